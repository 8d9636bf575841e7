--! include audit
-- audit_append: one audit entry on its own (what the service records that
-- is not a registry write).
-- KEYS: 1-4 audit keys. ARGV: 1 kind, 2 actor, 3 subject, 4 body.
-- Returns the entry's index.
audit(1, ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGET', KEYS[1], 'n') - 1
