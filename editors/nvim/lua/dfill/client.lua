-- Starting the dfill language server and attaching buffers to it: one
-- client for the whole editor session (the server keeps no workspace
-- state), started with vim.lsp.start on Neovim 0.8+ and with
-- vim.lsp.start_client + vim.lsp.buf_attach_client on 0.7.
local api = vim.api
local util = require("dfill.util")
local config = require("dfill.config")

local M = {}

M.name = "dfill"

--- Neovim's client capabilities plus textDocument.inlineCompletion, which
--- this plugin handles (on 0.12+ Neovim declares it itself). The server
--- then sends no plain completion items (completionItems "auto").
function M.capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  return caps
end

-- The last error or warning the server showed (window/showMessage).
M.last_message = nil

--- Handlers for what dfill sends beyond what Neovim handles.
function M.handlers()
  return {
    ["window/showMessage"] = function(err, result, ctx, cfg)
      if type(result) == "table" and result.type and result.type <= 2 then
        M.last_message = result.message
      end
      return vim.lsp.handlers["window/showMessage"](err, result, ctx, cfg)
    end,
    ["dfill/denoise"] = function(_, result)
      require("dfill.ghost").on_denoise(result)
    end,
  }
end

--- The directory above buf's file holding one of the root markers, or the
--- file's own directory.
function M.root_dir(buf, markers)
  local name = api.nvim_buf_get_name(buf)
  local dir = name ~= "" and vim.fn.fnamemodify(name, ":p:h") or util.uv.cwd()
  local d = dir
  while d and d ~= "" do
    for _, m in ipairs(markers or {}) do
      if util.uv.fs_stat(d .. "/" .. m) then
        return d
      end
    end
    local parent = vim.fn.fnamemodify(d, ":h")
    if parent == d then
      break
    end
    d = parent
  end
  return dir
end

--- The client configuration for the options in effect.
function M.make_config(buf)
  local cfg = config.get()
  local settings = config.settings()
  return {
    name = M.name,
    cmd = cfg.cmd,
    root_dir = M.root_dir(buf, cfg.root_markers),
    init_options = util.object(settings),
    settings = { dfill = util.object(settings) },
    capabilities = M.capabilities(),
    handlers = M.handlers(),
    on_attach = function(client, bufnr)
      require("dfill").attach(client, bufnr)
    end,
  }
end

--- Whether dfill should attach to buf.
function M.wanted(buf)
  if not api.nvim_buf_is_valid(buf) or vim.bo[buf].buftype ~= "" then
    return false
  end
  return vim.tbl_contains(config.get().filetypes, vim.bo[buf].filetype)
end

--- Attaches buf to the running dfill client, starting one when there is
--- none. Returns the client id, or nil when the server could not start.
function M.start(buf)
  local running = util.clients(M.name)[1]
  if running then
    vim.lsp.buf_attach_client(buf, running.id)
    return running.id
  end
  local conf = M.make_config(buf)
  if vim.fn.executable(conf.cmd[1]) ~= 1 then
    vim.notify_once(("dfill: %s is not executable; set cmd in require('dfill').setup()"):format(conf.cmd[1]), vim.log.levels.ERROR)
    return nil
  end
  if util.has("0.8") then
    return vim.lsp.start(conf, {
      bufnr = buf,
      reuse_client = function(client)
        return client.name == M.name and not util.is_stopped(client)
      end,
    })
  end
  local id = vim.lsp.start_client(conf)
  if id then
    vim.lsp.buf_attach_client(buf, id)
  end
  return id
end

--- Stops every dfill client; waits (up to timeout_ms) for them to exit.
function M.stop(timeout_ms)
  local clients = util.clients(M.name)
  for _, c in ipairs(clients) do
    util.stop(c)
  end
  vim.wait(timeout_ms or 2000, function()
    for _, c in ipairs(clients) do
      if not util.is_stopped(c) then
        return false
      end
    end
    return true
  end, 20)
  for _, c in ipairs(clients) do
    if not util.is_stopped(c) then
      util.stop(c, true)
    end
  end
end

--- Sends the settings in effect to the running clients.
function M.push_settings()
  local settings = util.object(config.settings())
  for _, c in ipairs(util.clients(M.name)) do
    c.config.settings = { dfill = settings }
    util.notify(c, "workspace/didChangeConfiguration", { settings = { dfill = settings } })
  end
end

return M
