-- The schema of the first release; the same tables as SQLite's, with PostgreSQL's types.
-- `approvals.pos` keeps the order approvals were given in (SQLite's rowid).
CREATE TABLE api_tokens (
    name TEXT NOT NULL, role TEXT NOT NULL, grp TEXT, hash TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL, revoked BIGINT);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked IS NULL;
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL,
    key TEXT, decision TEXT NOT NULL, security_counter BIGINT NOT NULL);
CREATE INDEX audit_key_decision ON audit(key, decision);
CREATE TABLE requests (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, requester TEXT NOT NULL, principal TEXT NOT NULL,
    body TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL,
    created BIGINT NOT NULL, expires BIGINT NOT NULL, result TEXT);
CREATE INDEX requests_fingerprint ON requests(fingerprint);
CREATE TABLE approvals (
    pos BIGSERIAL, request TEXT NOT NULL, approver TEXT NOT NULL,
    PRIMARY KEY (request, approver));
CREATE TABLE log_leaves (idx BIGINT PRIMARY KEY, entry BYTEA NOT NULL, audit_seq BIGINT NOT NULL);
CREATE TABLE log_hashes (idx BIGINT PRIMARY KEY, hash BYTEA NOT NULL);
CREATE TABLE log_checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL);
