-- Accounts that end, and the sessions that end with them.
--
-- A deleted user's row stays (deleted_at set, password_hash emptied), so its
-- username stays taken and its messages can be shown as from a deleted
-- account.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;

-- A token names its session by id. Revoking a session deletes its row; the
-- store deletes expired rows now and then. A deleted user's sessions stay
-- until they expire, dead by the join on users, so that every replica can
-- tell why a socket must close.
CREATE TABLE sessions (
    id      text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id),
    expires timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires);

-- Tickets saved before this migration name no session, so redeeming one
-- fails, as do the tokens they were issued for.
ALTER TABLE ws_tickets ADD COLUMN session_id text NOT NULL DEFAULT '';

---- create above / drop below ----

ALTER TABLE ws_tickets DROP COLUMN session_id;
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN deleted_at;
