-- wrk script: GET the recommendations of a uniformly random user u0000000 … u(N-1) (N from HOMEFEED_USERS).
local users = tonumber(os.getenv("HOMEFEED_USERS") or "1000000")
local limit = os.getenv("HOMEFEED_LIMIT") or "20"
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/v1/users/u%07d/recommendations?limit=%s", math.random(0, users - 1), limit))
end
