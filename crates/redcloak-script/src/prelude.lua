-- redcloak's sandbox prelude: runs once per Lua state, before any user code, as chunk
-- "=redcloak" (frames of this chunk are hidden from error positions, see error handling).
-- It makes the globals and the libraries read-only the way Redis 7.0 does: user code sees
-- proxies (empty tables whose metatable reads through to the real table and refuses writes).
local real_G, unwrap, check_killed = ...
local error, type, tostring, select = error, type, tostring, select
local base_rawget, base_rawset, base_next, base_pairs = rawget, rawset, next, pairs
local base_setmetatable, base_getmetatable = setmetatable, getmetatable
local base_pcall, base_xpcall = pcall, xpcall
local base_loadstring, base_resume = loadstring, coroutine.resume
local tinsert, tremove, tconcat = table.insert, table.remove, table.concat

local readonly_msg = "Attempt to modify a readonly table"
local real_of = base_setmetatable({}, { __mode = "k" })   -- proxy -> real table
local shown_mt = base_setmetatable({}, { __mode = "k" })  -- proxy -> what getmetatable shows

local function refuse() error(readonly_msg, 2) end

local function protect(real, shown)
  local proxy = {}
  base_setmetatable(proxy, { __index = real, __newindex = refuse, __metatable = false })
  real_of[proxy] = real
  shown_mt[proxy] = shown
  return proxy
end

local function undefined_global(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
base_setmetatable(real_G, { __index = undefined_global })

-- Library tables become read-only proxies, and so does _G itself.
local libs = { "string", "table", "math", "coroutine", "redis", "bit", "cjson", "cmsgpack", "struct" }
local proxies = {}
for i = 1, #libs do
  local real = base_rawget(real_G, libs[i])
  if real ~= nil then
    proxies[libs[i]] = protect(real, nil)
    base_rawset(real_G, libs[i], proxies[libs[i]])
  end
end
local G = protect(real_G, protect({ __index = undefined_global }, nil))
base_rawset(real_G, "_G", G)

-- The string metatable: methods read through the string library; getmetatable("") shows a
-- read-only view whose __index is the `string` global, as in Redis.
local string_mt = base_getmetatable("")
if string_mt and proxies.string then
  string_mt.__metatable = protect({ __index = proxies.string }, nil)
end

-- Raw access and iteration see through proxies; writes to them are refused.
local function raw_target(t) return real_of[t] or t end
function real_G.rawget(t, k) return base_rawget(raw_target(t), k) end
function real_G.rawset(t, k, v)
  if real_of[t] then error(readonly_msg, 0) end
  return base_rawset(t, k, v)
end
local function next_(t, k) return base_next(raw_target(t), k) end
real_G.next = next_
function real_G.pairs(t)
  if real_of[t] then return next_, t, nil end
  return base_pairs(t)
end
function real_G.setmetatable(t, mt)
  if real_of[t] then error(readonly_msg, 0) end
  return base_setmetatable(t, mt)
end
function real_G.getmetatable(t)
  if real_of[t] then return shown_mt[t] end
  return base_getmetatable(t)
end
local real_table = real_of[proxies.table]
if real_table then
  real_table.insert = function(t, ...)
    if real_of[t] then error(readonly_msg, 0) end
    return tinsert(t, ...)
  end
  real_table.remove = function(t, ...)
    if real_of[t] then error(readonly_msg, 0) end
    return tremove(t, ...)
  end
end

-- Redis's pcall gives the `err` string of an error table instead of the table.
local function pcall_result(ok, ...)
  if ok then return true, ... end
  check_killed()
  local e = unwrap((...))
  if type(e) == "table" then
    local s = base_rawget(e, "err")
    if type(s) == "string" or type(s) == "number" then return false, s end
  end
  return false, e
end
function real_G.pcall(...)
  if select("#", ...) == 0 then return false, "attempt to call a boolean value" end
  return pcall_result(base_pcall(...))
end
local function xpcall_result(ok, ...)
  if not ok then check_killed() end
  return ok, ...
end
function real_G.xpcall(f, handler)
  return xpcall_result(base_xpcall(f, function(e) return handler(unwrap(e)) end))
end
local function resume_result(ok, ...)
  if ok then return true, ... end
  check_killed()
  return false, unwrap((...))
end
real_of[proxies.coroutine].resume = function(co, ...)
  return resume_result(base_resume(co, ...))
end

-- Redis's Lua never loads precompiled bytecode: a chunk starting with ESC is parsed as text
-- (and so is a syntax error).
local function text_loadstring(s, name)
  if type(s) == "string" and s:byte(1) == 27 then
    local _, e = base_loadstring("\1", name or s)
    return nil, (e:gsub("char%(1%)'$", "char(27)'"))
  end
  return base_loadstring(s, name)
end
real_G.loadstring = text_loadstring
function real_G.load(f, name)
  if type(f) ~= "function" then error("bad argument #1 to 'load' (function expected, got " .. type(f) .. ")", 2) end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == "" then break end
    if type(piece) ~= "string" then return nil, "reader function must return a string" end
    parts[#parts + 1] = piece
  end
  return text_loadstring(tconcat(parts), name or "=(load)")
end

return G, protect
