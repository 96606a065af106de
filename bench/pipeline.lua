-- bench/pipeline.lua — wrk script: HTTP/1.1 pipelining.
--
-- Every time wrk asks for a request it gets DEPTH (default 16) copies of
-- `GET <path>` in one buffer, written with one write.  wrk parses the
-- buffer once at start-up to learn the depth, then counts each of the
-- DEPTH responses as one request (so Requests/sec is responses/sec) and
-- sends the next batch only when all DEPTH responses of the previous one
-- have arrived; latency is recorded per batch.
--
--   wrk -t1 -c256 -d10s --latency -s bench/pipeline.lua http://127.0.0.1:PORT/ -- 16
--
-- Arguments after `--`: depth (default 16), path (default "/").

local batch

init = function(args)
   local depth = tonumber(args[1]) or 16
   local path = args[2] or "/"
   local parts = {}
   for i = 1, depth do
      parts[i] = wrk.format("GET", path)
   end
   batch = table.concat(parts)
end

request = function()
   return batch
end
