-- GET /v1/status/{provider}/{model} over random seeded models.
local token = os.getenv("TOKEN")
local providers = tonumber(os.getenv("PROVIDERS") or "100")
math.randomseed(os.time())
request = function()
  local path = string.format("/v1/status/provider-%d/model-%d", math.random(0, providers - 1), math.random(0, 99))
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end
