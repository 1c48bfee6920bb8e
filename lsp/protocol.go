package lsp

import "encoding/json"

// The LSP types dfill speaks, with the JSON field names of the LSP 3.18
// specification. Only the fields dfill reads or writes are declared; the
// decoder ignores the rest.

// Position is a zero-based line and character offset in a document. The unit
// of Character is the negotiated position encoding (UTF-16 code units by
// default, bytes for UTF-8).
type Position struct {
	Line      uint32 `json:"line"`
	Character uint32 `json:"character"`
}

// Range is a half-open span [Start, End) of a document.
type Range struct {
	Start Position `json:"start"`
	End   Position `json:"end"`
}

// TextDocumentIdentifier names a document by URI.
type TextDocumentIdentifier struct {
	URI string `json:"uri"`
}

// VersionedTextDocumentIdentifier names a document and the version the
// change produces.
type VersionedTextDocumentIdentifier struct {
	URI     string `json:"uri"`
	Version int32  `json:"version"`
}

// TextDocumentItem is a document as the client opens it.
type TextDocumentItem struct {
	URI        string `json:"uri"`
	LanguageID string `json:"languageId"`
	Version    int32  `json:"version"`
	Text       string `json:"text"`
}

// TextDocumentContentChangeEvent is one edit: Range replaced by Text, or the
// whole document when Range is absent (full sync).
type TextDocumentContentChangeEvent struct {
	Range *Range `json:"range,omitempty"`
	Text  string `json:"text"`
}

// DidOpenTextDocumentParams are the params of textDocument/didOpen.
type DidOpenTextDocumentParams struct {
	TextDocument TextDocumentItem `json:"textDocument"`
}

// DidChangeTextDocumentParams are the params of textDocument/didChange.
type DidChangeTextDocumentParams struct {
	TextDocument   VersionedTextDocumentIdentifier  `json:"textDocument"`
	ContentChanges []TextDocumentContentChangeEvent `json:"contentChanges"`
}

// DidCloseTextDocumentParams are the params of textDocument/didClose.
type DidCloseTextDocumentParams struct {
	TextDocument TextDocumentIdentifier `json:"textDocument"`
}

// Position encodings (LSP 3.17 PositionEncodingKind).
const (
	EncodingUTF8  = "utf-8"
	EncodingUTF16 = "utf-16"
)

// ClientInfo names the client.
type ClientInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// WorkspaceFolder is one root the client opened.
type WorkspaceFolder struct {
	URI  string `json:"uri"`
	Name string `json:"name"`
}

// ClientCapabilities are the client capabilities dfill looks at.
type ClientCapabilities struct {
	General struct {
		PositionEncodings []string `json:"positionEncodings,omitempty"`
	} `json:"general"`
	Window struct {
		WorkDoneProgress bool `json:"workDoneProgress,omitempty"`
	} `json:"window"`
	Workspace struct {
		Configuration          bool `json:"configuration,omitempty"`
		DidChangeConfiguration struct {
			DynamicRegistration bool `json:"dynamicRegistration,omitempty"`
		} `json:"didChangeConfiguration"`
	} `json:"workspace"`
	TextDocument struct {
		InlineCompletion *struct {
			DynamicRegistration bool `json:"dynamicRegistration,omitempty"`
		} `json:"inlineCompletion,omitempty"`
	} `json:"textDocument"`
}

// InitializeParams are the params of initialize.
type InitializeParams struct {
	ProcessID             *int32             `json:"processId"`
	ClientInfo            *ClientInfo        `json:"clientInfo,omitempty"`
	RootURI               string             `json:"rootUri,omitempty"`
	Capabilities          ClientCapabilities `json:"capabilities"`
	InitializationOptions json.RawMessage    `json:"initializationOptions,omitempty"`
	WorkspaceFolders      []WorkspaceFolder  `json:"workspaceFolders,omitempty"`
}

// TextDocumentSyncOptions say how the client sends document changes.
type TextDocumentSyncOptions struct {
	OpenClose bool `json:"openClose"`
	Change    int  `json:"change"` // 0 none, 1 full, 2 incremental
}

// Text document sync kinds.
const (
	SyncFull        = 1
	SyncIncremental = 2
)

// CompletionOptions describe the completion provider.
type CompletionOptions struct {
	TriggerCharacters []string `json:"triggerCharacters,omitempty"`
	ResolveProvider   bool     `json:"resolveProvider"`
}

// ServerCapabilities are what dfill offers.
type ServerCapabilities struct {
	PositionEncoding         string                  `json:"positionEncoding"`
	TextDocumentSync         TextDocumentSyncOptions `json:"textDocumentSync"`
	InlineCompletionProvider bool                    `json:"inlineCompletionProvider"`
	CompletionProvider       *CompletionOptions      `json:"completionProvider,omitempty"`
}

// ServerInfo names the server.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// InitializeResult is the answer to initialize.
type InitializeResult struct {
	Capabilities ServerCapabilities `json:"capabilities"`
	ServerInfo   ServerInfo         `json:"serverInfo"`
}

// Inline completion trigger kinds (LSP 3.18).
const (
	InlineTriggerInvoked   = 1
	InlineTriggerAutomatic = 2
)

// SelectedCompletionInfo is the completion item selected in the client's
// completion widget, if one is shown.
type SelectedCompletionInfo struct {
	Range Range  `json:"range"`
	Text  string `json:"text"`
}

// InlineCompletionContext says why inline completion was requested.
type InlineCompletionContext struct {
	TriggerKind            int                     `json:"triggerKind"`
	SelectedCompletionInfo *SelectedCompletionInfo `json:"selectedCompletionInfo,omitempty"`
}

// InlineCompletionParams are the params of textDocument/inlineCompletion.
type InlineCompletionParams struct {
	TextDocument TextDocumentIdentifier  `json:"textDocument"`
	Position     Position                `json:"position"`
	Context      InlineCompletionContext `json:"context"`
}

// Command is a client command attached to an item.
type Command struct {
	Title     string            `json:"title"`
	Command   string            `json:"command"`
	Arguments []json.RawMessage `json:"arguments,omitempty"`
}

// InlineCompletionItem is one inline suggestion.
type InlineCompletionItem struct {
	InsertText string   `json:"insertText"`
	FilterText string   `json:"filterText,omitempty"`
	Range      *Range   `json:"range,omitempty"`
	Command    *Command `json:"command,omitempty"`
}

// InlineCompletionList is the answer to textDocument/inlineCompletion.
type InlineCompletionList struct {
	Items []InlineCompletionItem `json:"items"`
}

// Completion trigger kinds.
const (
	CompletionTriggerInvoked = 1
)

// CompletionContext says why completion was requested.
type CompletionContext struct {
	TriggerKind      int    `json:"triggerKind"`
	TriggerCharacter string `json:"triggerCharacter,omitempty"`
}

// CompletionParams are the params of textDocument/completion.
type CompletionParams struct {
	TextDocument TextDocumentIdentifier `json:"textDocument"`
	Position     Position               `json:"position"`
	Context      *CompletionContext     `json:"context,omitempty"`
}

// MarkupContent is formatted text (kind "plaintext" or "markdown").
type MarkupContent struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// TextEdit replaces Range with NewText.
type TextEdit struct {
	Range   Range  `json:"range"`
	NewText string `json:"newText"`
}

// CompletionItemKindText is the completion item kind dfill uses.
const CompletionItemKindText = 1

// InsertTextFormatPlainText marks insert text that is not a snippet.
const InsertTextFormatPlainText = 1

// CompletionItem is one entry of a completion list.
type CompletionItem struct {
	Label            string         `json:"label"`
	Kind             int            `json:"kind,omitempty"`
	Detail           string         `json:"detail,omitempty"`
	Documentation    *MarkupContent `json:"documentation,omitempty"`
	TextEdit         *TextEdit      `json:"textEdit,omitempty"`
	InsertTextFormat int            `json:"insertTextFormat,omitempty"`
	FilterText       string         `json:"filterText,omitempty"`
	SortText         string         `json:"sortText,omitempty"`
}

// CompletionList is the answer to textDocument/completion.
type CompletionList struct {
	IsIncomplete bool             `json:"isIncomplete"`
	Items        []CompletionItem `json:"items"`
}

// Message types of window/showMessage.
const (
	MessageError   = 1
	MessageWarning = 2
	MessageInfo    = 3
	MessageLog     = 4
)

// ShowMessageParams are the params of window/showMessage.
type ShowMessageParams struct {
	Type    int    `json:"type"`
	Message string `json:"message"`
}

// WorkDoneProgressCreateParams are the params of
// window/workDoneProgress/create.
type WorkDoneProgressCreateParams struct {
	Token string `json:"token"`
}

// ProgressParams are the params of $/progress.
type ProgressParams struct {
	Token string `json:"token"`
	Value any    `json:"value"`
}

// WorkDoneProgressBegin starts a progress report.
type WorkDoneProgressBegin struct {
	Kind        string `json:"kind"` // "begin"
	Title       string `json:"title"`
	Cancellable bool   `json:"cancellable"`
	Message     string `json:"message,omitempty"`
}

// WorkDoneProgressReport updates a progress report.
type WorkDoneProgressReport struct {
	Kind    string `json:"kind"` // "report"
	Message string `json:"message,omitempty"`
}

// WorkDoneProgressEnd ends a progress report.
type WorkDoneProgressEnd struct {
	Kind    string `json:"kind"` // "end"
	Message string `json:"message,omitempty"`
}

// ConfigurationItem names a configuration section to pull.
type ConfigurationItem struct {
	ScopeURI string `json:"scopeUri,omitempty"`
	Section  string `json:"section,omitempty"`
}

// ConfigurationParams are the params of workspace/configuration.
type ConfigurationParams struct {
	Items []ConfigurationItem `json:"items"`
}

// DidChangeConfigurationParams are the params of
// workspace/didChangeConfiguration.
type DidChangeConfigurationParams struct {
	Settings json.RawMessage `json:"settings"`
}

// CancelParams are the params of $/cancelRequest; ID is a number or a string.
type CancelParams struct {
	ID json.RawMessage `json:"id"`
}

// DenoiseParams are the params of the dfill/denoise notification: one
// denoising step of the completion requested at Position.
type DenoiseParams struct {
	URI      string   `json:"uri"`
	Position Position `json:"position"`
	Step     int      `json:"step"`
	Steps    int      `json:"steps"`
	Text     string   `json:"text"`
}

// Stats is the answer to the dfill/stats request: aggregated timings of the
// completion requests served so far. Own time is a request's time in the
// server minus the time spent in the model.
type Stats struct {
	Count      int     `json:"count"`
	Cancelled  int     `json:"cancelled"`
	CacheHits  int     `json:"cacheHits"`
	TotalMs    float64 `json:"totalMs"`
	ModelMs    float64 `json:"modelMs"`
	OwnP50Ms   float64 `json:"ownP50Ms"`
	OwnP95Ms   float64 `json:"ownP95Ms"`
	OwnMaxMs   float64 `json:"ownMaxMs"`
	Model      string  `json:"model,omitempty"`
	ModelError string  `json:"modelError,omitempty"`
}
