-- One reservation from a project's upstream budget (GCRA), atomic on the server.
-- KEYS[1]: the project's key, holding its theoretical arrival time (TAT) in
-- microseconds of Redis's clock. ARGV: interval, tolerance and the longest
-- wait allowed, all in microseconds.
-- Returns {1, wait}: a slot, to be used after `wait`; or {0, retry_after}:
-- no slot within the wait allowed, nothing taken.
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
-- Redis's own clock: one clock for every replica, however theirs drift.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local arrival = tonumber(redis.call('GET', KEYS[1]) or now)
if arrival < now then
    arrival = now
end
local wait = arrival - (now + tolerance)
if wait < 0 then
    wait = 0
end
if wait > max_wait then
    return {0, wait}
end
local next_arrival = arrival + interval
-- Once the TAT has passed, the bucket is full: the same as no key at all.
local idle_ms = math.ceil((next_arrival - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', next_arrival), 'PX', idle_ms)
return {1, wait}
