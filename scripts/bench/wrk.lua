-- One wrk script for every benchmarked route:
--   wrk ... -s wrk.lua URL -- ROUTE CUSTOMERS ORDERS ITEMS
-- ROUTE is customer | order | order_total | totals | place_order, or a search: search_word |
-- search_words | search_phrase | search_price (words from the seed's vocabulary, percent-encoded).
-- Ids are drawn at random from
-- the seeded ranges with a fixed seed per thread, so marketsvc and the baseline see the same
-- sequence. done() prints one line "WRKJSON {...}" for the harness to parse.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_id", counter)
   table.insert(threads, thread)
end

local route, customers, orders, items

function init(args)
   route = args[1]
   customers = tonumber(args[2])
   orders = tonumber(args[3])
   items = tonumber(args[4])
   math.randomseed(1000 + thread_id)
   wrk.headers["Content-Type"] = "application/json"
   statuses = {}
end

local function totals_body()
   local ids = {}
   for i = 1, 100 do
      ids[i] = math.random(1, orders)
   end
   return '{"order_ids":[' .. table.concat(ids, ",") .. ']}'
end

-- seed's items go round its sellers in turn (5 by default): item ids that differ mod 5 belong to
-- different sellers. Every order spans 2 or 3 sellers (3 items, not all from one seller).
local SELLERS = 5

local function order_body()
   local picked, lines, sellers = {}, {}, {}
   while #lines < 3 do
      local id = math.random(1, items)
      local seller = id % SELLERS
      local last_and_one_seller = #lines == 2 and sellers[seller] == 2
      if not picked[id] and not last_and_one_seller then
         picked[id] = true
         sellers[seller] = (sellers[seller] or 0) + 1
         lines[#lines + 1] = '{"item_id":' .. id .. ',"quantity":1}'
      end
   end
   return '{"customer_id":' .. math.random(1, customers) .. ',"lines":[' ..
      table.concat(lines, ",") .. ']}'
end

local goods = {"kettle", "lamp", "chair", "notebook", "teapot", "backpack", "umbrella", "mug",
   "blanket", "desk", "candle", "scarf", "clock", "vase", "rug", "cushion", "bookshelf",
   "pi%C3%B1ata", "saut%C3%A9", "caf%C3%A9", "fondue", "espresso", "grinder", "bottle"}
local materials = {"oak", "walnut", "steel", "copper", "brass", "wool", "linen", "ceramic",
   "porcelain", "glass", "marble", "bamboo", "cork", "terracotta", "velvet", "rattan"}

local function any(words)
   return words[math.random(1, #words)]
end

local function search_path()
   local query
   if route == "search_word" then
      query = "q=" .. any(goods)
   elseif route == "search_words" then
      query = "q=" .. any(materials) .. "%20" .. any(goods)
   elseif route == "search_phrase" then
      query = "q=%22" .. any(materials) .. "%20" .. any(goods) .. "%22"
   else
      local low = math.random(1, 245)
      query = string.format("min_price=%d.00&max_price=%d.00&sort=price", low, low + 5)
   end
   return "/api/v1/items?" .. query .. "&limit=20"
end

function request()
   if route == "customer" then
      return wrk.format("GET", "/api/v1/customers/" .. math.random(1, customers))
   elseif route == "order" then
      return wrk.format("GET", "/api/v1/orders/" .. math.random(1, orders))
   elseif route == "order_total" then
      return wrk.format("GET", "/api/v1/orders/" .. math.random(1, orders) .. "/total")
   elseif route == "totals" then
      return wrk.format("POST", "/api/v1/orders/totals", nil, totals_body())
   elseif route == "place_order" then
      return wrk.format("POST", "/api/v1/orders", nil, order_body())
   elseif string.sub(route, 1, 7) == "search_" then
      return wrk.format("GET", search_path())
   end
   error("unknown route " .. tostring(route))
end

-- Counting statuses costs wrk a little per response; the harness turns it on for writes only.
if os.getenv("BENCH_COUNT_STATUS") == "1" then
   function response(status, headers, body)
      if status >= 300 then
         statuses[status] = (statuses[status] or 0) + 1
      end
   end
end

function done(summary, latency, requests)
   local by_status = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for status, n in pairs(counts) do
         by_status[#by_status + 1] = string.format('"%d":%d', status, n)
      end
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
      '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"statuses":{%s}}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      table.concat(by_status, ",")))
end
