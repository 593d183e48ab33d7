-- The highest security counter a key has signed is read before every signature: with the
-- counter in the index that read is one index lookup, not a visit of every signed record.
CREATE INDEX audit_signed_counter ON audit(key, decision, security_counter);
DROP INDEX audit_key_decision;
