package postgres

import (
	"context"
	"hash/maphash"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley/server/internal/chat"
)

// writeTimeout bounds one transaction of a writer, so that a database that
// stops answering fails the queued appends instead of stalling them, and
// Close, forever.
const writeTimeout = 10 * time.Second

// appendReq is an Append waiting for its writer.
type appendReq struct {
	ctx   context.Context
	draft chat.Draft
	reply chan appendResult // buffered, so a writer never waits for a caller that gave up
}

type appendResult struct {
	msg     chat.Message
	created bool
	err     error
}

// Append stores d with the next seq of its room, or returns the message
// already stored with d's (room, user, client id) and created=false. An
// unknown room is chat.ErrNotFound; a closed store or an unreachable
// database is chat.ErrUnavailable.
//
// The draft is written together with the other appends queued at the time,
// in one transaction, and Append returns once that has committed. If ctx
// ends first Append returns ctx.Err(), but the draft may still be stored:
// retrying with the same client id is safe, as it returns the stored message.
// The same is true of a chat.ErrUnavailable that arrives while committing.
func (s *Store) Append(ctx context.Context, d chat.Draft) (chat.Message, bool, error) {
	req := &appendReq{ctx: ctx, draft: d, reply: make(chan appendResult, 1)}
	if err := s.enqueue(ctx, req); err != nil {
		return chat.Message{}, false, err
	}
	select {
	case r := <-req.reply:
		return r.msg, r.created, r.err
	case <-ctx.Done():
		return chat.Message{}, false, ctx.Err()
	}
}

func (s *Store) enqueue(ctx context.Context, req *appendReq) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return chat.Errorf(chat.ErrUnavailable, "store closed")
	}
	// One room, one writer: its appends are stored in the order they
	// arrived, and this process's writers never wait on each other's locks.
	q := s.queues[maphash.String(s.seed, req.draft.Room)%uint64(len(s.queues))]
	select {
	case q <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runWriter stores what arrives on q until q is closed and drained. It takes
// whatever has queued up, so the busier the room, the bigger the batches and
// the fewer the commits.
func (s *Store) runWriter(q <-chan *appendReq) {
	defer s.writers.Done()
	batch := make([]*appendReq, 0, s.maxBatch)
	for req := range q {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case req, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, req)
			default:
				break fill
			}
		}
		s.write(batch)
		clear(batch) // let answered requests go
	}
}

// write stores a batch and answers every request in it.
func (s *Store) write(batch []*appendReq) {
	// A caller that has given up already has its answer (ctx.Err()); not
	// storing its draft sheds load when the database falls behind.
	live := make([]*appendReq, 0, len(batch))
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.reply <- appendResult{err: err}
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	s.batches.Add(1)
	s.drafts.Add(int64(len(live)))
	if s.onBatch != nil {
		s.onBatch(len(live))
	}

	results, err := s.commitWithTimeout(live)
	if err == nil {
		for i, req := range live {
			req.reply <- results[i]
		}
		return
	}
	if len(live) == 1 || isUnavailable(err) {
		answerAll(live, err)
		return
	}

	// Something in the batch broke the transaction, but which draft is
	// unknown; one per transaction, only that one fails.
	s.log.Warn("append batch failed, retrying its drafts one by one", "drafts", len(live), "err", err)
	for i, req := range live {
		results, err := s.commitWithTimeout(live[i : i+1])
		if err != nil && isUnavailable(err) {
			answerAll(live[i:], err)
			return
		}
		if err != nil {
			req.reply <- appendResult{err: classify("append", err)}
			continue
		}
		req.reply <- results[0]
	}
}

// answerAll fails reqs with err. Writers classify without s.fail: the pool
// stays open until they are done, even while Close waits for them.
func answerAll(reqs []*appendReq, err error) {
	err = classify("append", err)
	for _, req := range reqs {
		req.reply <- appendResult{err: err}
	}
}

func (s *Store) commitWithTimeout(reqs []*appendReq) ([]appendResult, error) {
	// Not the callers' contexts: the batch is theirs together, and one
	// caller leaving must not fail the others.
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return s.commit(ctx, reqs)
}

// idemKey is what makes two drafts the same message.
type idemKey struct{ room, user, clientID string }

func keyOf(d chat.Draft) idemKey { return idemKey{d.Room, d.User.ID, d.ClientID} }

const (
	// lockRoomsSQL locks in id order, the same order in every writer of
	// every replica, so writers sharing rooms queue up instead of
	// deadlocking. Holding a room's row is what entitles a writer to its
	// next seqs.
	lockRoomsSQL = `SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE`

	// findStoredSQL runs after the locks are held, so it sees every message
	// committed to these rooms before.
	findStoredSQL = `SELECT ` + messageColumns + ` FROM messages
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (room_id, user_id, client_id)
		USING (room_id, user_id, client_id)`

	insertMessagesSQL = `INSERT INTO messages (` + messageColumns + `)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])`

	advanceRoomsSQL = `UPDATE rooms SET last_seq = u.last_seq
		FROM unnest($1::text[], $2::bigint[]) AS u (id, last_seq)
		WHERE rooms.id = u.id`
)

// commit stores reqs' drafts in one transaction and returns each one's
// result, in order. An error fails the whole transaction; a draft for an
// unknown room fails only itself.
func (s *Store) commit(ctx context.Context, reqs []*appendReq) ([]appendResult, error) {
	keyRooms := make([]string, len(reqs))
	keyUsers := make([]string, len(reqs))
	keyClientIDs := make([]string, len(reqs))
	for i, req := range reqs {
		keyRooms[i], keyUsers[i], keyClientIDs[i] = req.draft.Room, req.draft.User.ID, req.draft.ClientID
	}
	rooms := slices.Compact(slices.Sorted(slices.Values(keyRooms)))

	lastSeq := make(map[string]int64, len(rooms))
	stored := make(map[idemKey]chat.Message)
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(lockRoomsSQL, rooms).Query(func(rows pgx.Rows) error {
		var id string
		var seq int64
		_, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
			lastSeq[id] = seq
			return nil
		})
		return err
	})
	b.Queue(findStoredSQL, keyRooms, keyUsers, keyClientIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				return err
			}
			stored[idemKey{m.Room, m.User.ID, m.ClientID}] = m
		}
		return rows.Err()
	})
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx) // a no-op once committed
	if err := br.Close(); err != nil {
		return nil, err
	}

	results := make([]appendResult, len(reqs))
	created := make(map[idemKey]int) // index of the draft in this batch that stores the key
	advanced := make(map[string]bool)
	var ins messageArrays
	for i, req := range reqs {
		d := req.draft
		k := keyOf(d)
		last, roomExists := lastSeq[d.Room]
		if m, ok := stored[k]; ok {
			results[i] = appendResult{msg: m}
			continue
		}
		if j, ok := created[k]; ok {
			results[i] = appendResult{msg: results[j].msg}
			continue
		}
		if !roomExists {
			results[i] = appendResult{err: chat.Errorf(chat.ErrNotFound, "room not found")}
			continue
		}
		lastSeq[d.Room] = last + 1
		advanced[d.Room] = true
		m := chat.Message{
			ID:       d.ID,
			Room:     d.Room,
			Seq:      last + 1,
			ClientID: d.ClientID,
			User:     d.User,
			Body:     d.Body,
			TS:       d.TS.Truncate(time.Microsecond).UTC(), // what a later read returns
		}
		results[i] = appendResult{msg: m, created: true}
		created[k] = i
		ins.add(m)
	}
	if len(created) == 0 {
		return results, nil
	}

	var advRooms []string
	var advSeqs []int64
	for room := range advanced {
		advRooms = append(advRooms, room)
		advSeqs = append(advSeqs, lastSeq[room])
	}
	b = &pgx.Batch{}
	b.Queue(insertMessagesSQL, ins.room, ins.seq, ins.id, ins.userID, ins.username, ins.clientID, ins.body, ins.ts)
	b.Queue(advanceRoomsSQL, advRooms, advSeqs)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// messageArrays holds new messages column by column, as unnest wants them.
type messageArrays struct {
	room, id, userID, username, clientID, body []string
	seq                                        []int64
	ts                                         []time.Time
}

func (a *messageArrays) add(m chat.Message) {
	a.room = append(a.room, m.Room)
	a.seq = append(a.seq, m.Seq)
	a.id = append(a.id, m.ID)
	a.userID = append(a.userID, m.User.ID)
	a.username = append(a.username, m.User.Username)
	a.clientID = append(a.clientID, m.ClientID)
	a.body = append(a.body, m.Body)
	a.ts = append(a.ts, m.TS)
}
