-- wrk: GET the receipt of a random registration; ids come from the file BENCH_IDS.
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end

request = function()
  return wrk.format("GET", "/api/v1/submissions/" .. ids[math.random(#ids)] .. "/receipt")
end
