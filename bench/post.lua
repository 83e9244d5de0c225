-- wrk: POST a registration-like JSON body with a fresh SHA-256 each time.
-- Environment: BENCH_TOKEN (a site token; optional for the baseline).
local counter = 0
local token = os.getenv("BENCH_TOKEN")

request = function()
  counter = counter + 1
  local body = string.format(
    '{"trial":"NCT01234567","site":"SITE-01","dataset":"bench","filename":"f.csv",' ..
    '"sha256":"%064x","sizeBytes":%d}', counter, counter)
  local headers = { ["Content-Type"] = "application/json" }
  if token then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", nil, headers, body)
end
