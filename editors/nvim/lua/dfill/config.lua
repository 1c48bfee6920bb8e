-- The plugin's options: defaults, merged with what setup() is given.
local M = {}

M.defaults = {
  -- The server command: a list, or a path to the dfill binary (then
  -- "serve" is added).
  cmd = { "dfill", "serve" },
  -- The "dfill" settings section, sent as initializationOptions and answered
  -- to workspace/configuration: model, steps, algorithm, threshold,
  -- minScore, maxTokens, contextTokens, debounceMs, languages, logLevel, ...
  settings = {},
  -- Filetypes dfill attaches to (the languages the server validates).
  filetypes = { "go", "python", "javascript", "typescript", "typescriptreact", "rust", "c", "cpp", "java" },
  -- Files whose directory is the workspace root.
  root_markers = { "go.mod", "Cargo.toml", "package.json", "pyproject.toml", "setup.py", ".git" },
  -- false: setup() starts nothing (the commands still work).
  enabled = true,
  -- Suggestions while typing; false: only on the trigger key.
  auto_trigger = true,
  -- Wait this long after the last keystroke before asking (milliseconds).
  debounce_ms = 75,
  -- Who draws the suggestion: "auto" (Neovim's vim.lsp.inline_completion
  -- on 0.12+, this plugin's own ghost text before), "builtin" or "plugin".
  ghost_text = "auto",
  -- Show the denoising steps as the suggestion is generated (asks the
  -- server for dfill/denoise notifications).
  show_denoise = false,
  -- Insert-mode keys; false for one of them (or for all) maps nothing.
  keymaps = {
    accept = "<M-l>",
    accept_word = "<M-w>",
    accept_line = "<M-j>",
    dismiss = "<C-]>",
    next = "<M-]>",
    prev = "<M-[>",
    trigger = "<M-\\>",
  },
  -- Called as on_attach(client, bufnr) after dfill attaches to a buffer.
  on_attach = nil,
}

local current = vim.deepcopy(M.defaults)

--- The options in effect.
function M.get()
  return current
end

--- Merges opts over the defaults and makes them the options in effect.
function M.set(opts)
  opts = opts or {}
  local merged = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  -- Lists replace, they do not merge element by element.
  for _, key in ipairs({ "filetypes", "root_markers" }) do
    if opts[key] then
      merged[key] = opts[key]
    end
  end
  if opts.cmd then
    merged.cmd = type(opts.cmd) == "string" and { opts.cmd, "serve" } or opts.cmd
  end
  if opts.settings then
    merged.settings = opts.settings
  end
  if opts.keymaps == false then
    merged.keymaps = false
  end
  current = merged
  return current
end

--- The settings section to send, with denoiseNotifications when the
--- plugin shows the denoising steps.
function M.settings()
  local s = vim.deepcopy(current.settings or {})
  if current.show_denoise and s.denoiseNotifications == nil then
    s.denoiseNotifications = true
  end
  return s
end

--- Whether this session uses Neovim's own inline completion.
function M.builtin()
  local mode = current.ghost_text
  local available = vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
  if mode == "builtin" then
    return available
  end
  return mode == "auto" and available
end

return M
