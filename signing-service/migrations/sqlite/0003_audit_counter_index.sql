-- The highest security counter a key has signed is read before every signature: without an
-- index that read scanned the whole trail, so signing slowed down as the trail grew.
CREATE INDEX audit_signed_counter ON audit(key, decision, security_counter);
