-- Key life-cycle states (`fwsign key retire|revoke`): a configured key without a row is
-- active. `changed` is when the state was last set, in seconds since the Unix epoch.
CREATE TABLE key_states (name TEXT PRIMARY KEY, state TEXT NOT NULL, changed INTEGER NOT NULL);
