-- Names compare without regard to case, so the unique indexes are on lower().

CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- last_seq is the seq of the room's newest message. Appends lock the room row
-- and advance it, which is what keeps seqs gapless across writers and
-- replicas.
CREATE TABLE rooms (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seq   bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rooms_name_key ON rooms (lower(name));

-- username is copied from users because usernames never change, so history
-- reads need no join. user_id has no foreign key: every append would pay a
-- lookup and a row lock in users for a check the service has already made
-- (the sender is authenticated).
CREATE TABLE messages (
    room_id    text NOT NULL REFERENCES rooms (id),
    seq        bigint NOT NULL,
    id         text NOT NULL,
    user_id    text NOT NULL,
    username   text NOT NULL,
    client_id  text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (room_id, seq),
    CONSTRAINT messages_id_key UNIQUE (id),
    -- A client's retry of a send must not store it twice.
    CONSTRAINT messages_idempotency_key UNIQUE (room_id, user_id, client_id)
);

CREATE TABLE ws_tickets (
    hash            text PRIMARY KEY,
    user_id         text NOT NULL,
    username        text NOT NULL,
    session_expires timestamptz NOT NULL,
    expires         timestamptz NOT NULL
);
CREATE INDEX ws_tickets_expires_idx ON ws_tickets (expires);

---- create above / drop below ----

DROP TABLE ws_tickets;
DROP TABLE messages;
DROP TABLE rooms;
DROP TABLE users;
