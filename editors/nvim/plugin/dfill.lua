-- Commands for dfill; nothing starts until require("dfill").setup() is
-- called or vim.lsp.enable("dfill") attaches the server (lsp/dfill.lua).
if vim.g.loaded_dfill then
  return
end
vim.g.loaded_dfill = true

local function cmd(name, fn, desc)
  vim.api.nvim_create_user_command(name, fn, { desc = desc })
end

cmd("DfillStatus", function()
  print(table.concat(require("dfill").status_lines(), "\n"))
end, "dfill: server, model, latency and errors")
cmd("DfillEnable", function()
  require("dfill").enable()
end, "dfill: turn suggestions on")
cmd("DfillDisable", function()
  require("dfill").disable()
end, "dfill: turn suggestions off")
cmd("DfillToggle", function()
  require("dfill").toggle()
end, "dfill: turn suggestions on or off")
cmd("DfillRestart", function()
  require("dfill").restart()
end, "dfill: restart the server")
