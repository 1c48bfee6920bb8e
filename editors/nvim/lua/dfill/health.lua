-- :checkhealth dfill
local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local err = health.error or health.report_error
local info = health.info or health.report_info

function M.check()
  start("dfill")
  local util = require("dfill.util")
  local config = require("dfill.config")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if not util.has("0.7") then
    err("Neovim " .. version .. ": dfill needs 0.7 or later")
  elseif config.builtin() then
    ok("Neovim " .. version .. ": suggestions drawn by vim.lsp.inline_completion")
  else
    ok("Neovim " .. version .. ": suggestions drawn by the plugin's ghost text")
  end

  local cmd = config.get().cmd
  if vim.fn.executable(cmd[1]) ~= 1 then
    err(cmd[1] .. " is not executable", { "install dfill, or set cmd in require('dfill').setup({ cmd = '/path/to/dfill' })" })
  else
    local out = vim.fn.system({ cmd[1], "version", "--json" })
    local decoded = vim.v.shell_error == 0 and pcall(vim.json.decode, out) and vim.json.decode(out) or nil
    if decoded and decoded.version then
      ok(("%s: dfill %s"):format(vim.fn.exepath(cmd[1]), decoded.version))
    else
      warn(cmd[1] .. " version --json failed: " .. vim.trim(out))
    end
  end

  local st = require("dfill").status(1000)
  if not st.running then
    info("server not running (it starts when a buffer of these filetypes opens: " .. table.concat(config.get().filetypes, ", ") .. ")")
  end
  for _, c in ipairs(st.clients) do
    if c.stats and c.stats.modelError and c.stats.modelError ~= "" then
      err("model failed to load: " .. c.stats.modelError)
    elseif c.stats then
      ok(("server running (pid %s), model %s"):format(tostring(c.pid), tostring(c.stats.model)))
    else
      warn("server running but dfill/stats failed: " .. tostring(c.stats_error))
    end
  end
  if st.last_message then
    warn("last message from the server: " .. st.last_message)
  end
  if not st.enabled then
    warn("suggestions are off (:DfillEnable)")
  end
end

return M
