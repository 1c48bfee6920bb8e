-- The dfill language server for Neovim 0.11+'s vim.lsp.config:
--
--   vim.lsp.config("dfill", { cmd = { "/path/to/dfill", "serve" }, settings = { dfill = { steps = 8 } } })
--   vim.lsp.enable("dfill")
--
-- On attach, the plugin maps its keys and turns on inline completion
-- (Neovim's own on 0.12+, the plugin's ghost text on 0.11).
local client = require("dfill.client")
local config = require("dfill.config").defaults

return {
  cmd = config.cmd,
  filetypes = config.filetypes,
  root_markers = config.root_markers,
  settings = { dfill = vim.empty_dict() },
  init_options = vim.empty_dict(),
  capabilities = client.capabilities(),
  handlers = client.handlers(),
  -- The settings section also goes in initializationOptions, so that the
  -- first completion already uses it.
  before_init = function(params, cfg)
    local section = cfg.settings and cfg.settings.dfill
    if type(section) == "table" and next(section) ~= nil then
      params.initializationOptions = section
    end
  end,
  on_attach = function(c, bufnr)
    require("dfill").attach(c, bufnr)
  end,
}
