-- The schema of the first release. `IF NOT EXISTS` adopts a database created before schema
-- versions were recorded.
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT NOT NULL, role TEXT NOT NULL, grp TEXT, hash TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL, revoked INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_live_name ON api_tokens(name) WHERE revoked IS NULL;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL,
    key TEXT, decision TEXT NOT NULL, security_counter INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, requester TEXT NOT NULL, principal TEXT NOT NULL,
    body TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL,
    created INTEGER NOT NULL, expires INTEGER NOT NULL, result TEXT);
CREATE INDEX IF NOT EXISTS requests_fingerprint ON requests(fingerprint);
CREATE TABLE IF NOT EXISTS approvals (
    request TEXT NOT NULL, approver TEXT NOT NULL, PRIMARY KEY (request, approver));
CREATE TABLE IF NOT EXISTS log_leaves (
    idx INTEGER PRIMARY KEY, entry BLOB NOT NULL, audit_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_hashes (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS log_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
