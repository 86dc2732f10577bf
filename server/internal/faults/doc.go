// Package faults switches faults on and off in a running server, so that a
// game day can break Parley on purpose and prove that the dashboards show it
// and the right alert fires. It wraps the seams the server already has (the
// store, the bus, and the hub's side of the bus) in decorators that cost one
// atomic load per call while no fault is on.
//
// The faults, what a user sees, and what should page:
//
//   - send_errors: a fraction of message appends fail as if the store were
//     unreachable (chat.ErrUnavailable, "injected fault: store unavailable").
//     Senders get unavailable errors instead of acks. Alerts:
//     ParleyAckAvailabilityBudgetBurn (the ack availability SLO burns; the
//     end-to-end test server/systemtest/stack_test.go pages with it) and
//     ParleyStoreErrors.
//   - store_latency: every store call (or a fraction of them) waits for a
//     delay first, giving up when its context ends. Sends, history and joins
//     all slow down, which the ack latency and store panels show; no SLO
//     covers ack latency yet. With a delay near the send timeout, sends
//     fail too, and ParleyAckAvailabilityBudgetBurn pages.
//   - broker_drops: a fraction of the events this replica publishes to the
//     others are silently lost. Messages still arrive, late, through the
//     hub's catch-up from the store, so parley_backfills_total rises and
//     cross-replica delivery slows down. It does nothing on a single replica,
//     which has no bus. Alerts: ParleyBackfillsSpiking and, once the
//     backfill waits push deliveries past 250 ms,
//     ParleyDeliveryLatencyBudgetBurn.
//   - slow_fanout: each event from another replica waits for a delay before
//     the hub gets it. The bus reads one event at a time, so the wait holds
//     up every event behind it: fan-out lag, and with long delays Redis drops
//     the subscription and the bus resyncs. Local deliveries on one replica
//     do not pass through the bus and are not delayed. Alert:
//     ParleyDeliveryLatencyBudgetBurn.
//
// Every fault reports parley_fault_active{fault} (1 while on) and
// parley_fault_injections_total{fault} (times it actually fired), so a game
// day's graphs show when the fault was on next to what it did; an alert on
// parley_fault_active catches a fault someone forgot to switch off.
//
// Operators drive the faults through the admin listener's /admin/faults
// routes, which httpapi serves with the Injector's methods.
package faults
