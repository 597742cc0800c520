-- POST /v1/status/check with 100 random items and a context.
local token = os.getenv("TOKEN")
local providers = tonumber(os.getenv("PROVIDERS") or "100")
math.randomseed(os.time() + 1)
local function body()
  local items = {}
  for i = 1, 100 do
    items[i] = string.format(
      '{"provider":"provider-%d","model":"model-%d","data_classes":["internal"],"regions":["eu"]}',
      math.random(0, providers - 1), math.random(0, 99))
  end
  return '{"items":[' .. table.concat(items, ",") .. ']}'
end
local bodies = {}
for i = 1, 50 do bodies[i] = body() end
request = function()
  return wrk.format("POST", "/v1/status/check",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" },
    bodies[math.random(1, #bodies)])
end
