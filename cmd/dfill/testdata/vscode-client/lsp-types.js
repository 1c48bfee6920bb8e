// Validators for the LSP 3.18 types that pass between VS Code and dfill.
//
// No npm package ships LSP's metaModel.json (vscode-languageserver-protocol
// 3.18.5 carries only metaModel.schema.json), so the types are written out
// here from the declarations of vscode-languageserver-protocol 3.18.5 and
// vscode-languageserver-types 3.18.5 (node_modules/*/lib/**/*.d.ts), the
// sources the metaModel is generated from. Structures are closed: a
// property the type does not declare is reported, since VS Code ignores it
// and it is most likely a misspelt name. ServerCapabilities' properties that
// dfill does not announce are checked at their first level only.
//
// A validator is a function (value, path) returning a list of problems, each
// naming the JSON path where it was found; an empty list means the value has
// the type.
'use strict';

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

function describe(v) {
  if (v === undefined) return 'undefined';
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

const string = (v, p) => (typeof v === 'string' ? [] : [`${p}: want a string, got ${describe(v)}`]);
const boolean = (v, p) => (typeof v === 'boolean' ? [] : [`${p}: want a boolean, got ${describe(v)}`]);
const nul = (v, p) => (v === null ? [] : [`${p}: want null, got ${describe(v)}`]);
const integer = (v, p) => (Number.isInteger(v) && v >= INT_MIN && v <= INT_MAX ? [] : [`${p}: want an integer, got ${describe(v)}`]);
const uinteger = (v, p) => (Number.isInteger(v) && v >= 0 && v <= INT_MAX ? [] : [`${p}: want a uinteger, got ${describe(v)}`]);
const decimal = (v, p) => (typeof v === 'number' && Number.isFinite(v) ? [] : [`${p}: want a decimal, got ${describe(v)}`]);
// LSPAny: any JSON value (undefined is what an absent property reads as).
const any = (v, p) => (v === undefined ? [`${p}: missing`] : []);
const object = (v, p) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? [] : [`${p}: want an object, got ${describe(v)}`]);

function literal(...values) {
  return (v, p) => (values.includes(v) ? [] : [`${p}: want one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(v)}`]);
}

function array(item) {
  return (v, p) => (Array.isArray(v) ? v.flatMap((x, i) => item(x, `${p}[${i}]`)) : [`${p}: want an array, got ${describe(v)}`]);
}

// or passes when one alternative does. Otherwise it reports the problems of
// the closest alternative of the value's own kind (an object checked as
// CompletionList rather than as CompletionItem[]), or, when none is of its
// kind, what each alternative wanted.
function or(...alts) {
  return (v, p) => {
    let best;
    const wants = [];
    for (const alt of alts) {
      const errs = alt(v, p);
      if (errs.length === 0) return [];
      const kindMismatch = errs.length === 1 && errs[0].startsWith(`${p}: want `);
      if (kindMismatch) wants.push(errs[0].slice(`${p}: want `.length).replace(/, got .*$/s, ''));
      else if (best === undefined || errs.length < best.length) best = errs;
    }
    return best || [`${p}: want ${wants.join(' or ')}, got ${describe(v)}`];
  };
}

// struct checks an object with required and optional properties; with
// open set, properties it does not name are allowed.
function struct(name, required, optional = {}, { open = false } = {}) {
  return (v, p) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return [`${p}: want ${name}, got ${describe(v)}`];
    const errs = [];
    for (const [k, t] of Object.entries(required)) {
      if (!(k in v)) errs.push(`${p}: ${name} lacks required property "${k}"`);
      else errs.push(...t(v[k], `${p}.${k}`));
    }
    for (const [k, t] of Object.entries(optional)) {
      if (k in v) errs.push(...t(v[k], `${p}.${k}`));
    }
    if (!open) {
      for (const k of Object.keys(v)) {
        if (!(k in required) && !(k in optional)) errs.push(`${p}: ${name} has no property "${k}"`);
      }
    }
    return errs;
  };
}

// Basic structures (vscode-languageserver-types).
const Position = struct('Position', { line: uinteger, character: uinteger });
const Range = struct('Range', { start: Position, end: Position });
const TextEdit = struct('TextEdit', { range: Range, newText: string });
const InsertReplaceEdit = struct('InsertReplaceEdit', { newText: string, insert: Range, replace: Range });
const Command = struct('Command', { title: string, command: string }, { tooltip: string, arguments: array(any) });
const MarkupKind = literal('plaintext', 'markdown');
const MarkupContent = struct('MarkupContent', { kind: MarkupKind, value: string });
const ProgressToken = or(integer, string);

// Completion.
const CompletionItemKind = literal(...Array.from({ length: 25 }, (_, i) => i + 1));
const CompletionItemTag = literal(1);
const InsertTextFormat = literal(1, 2);
const InsertTextMode = literal(1, 2);
const ApplyKind = literal(1, 2);
const CompletionItemLabelDetails = struct('CompletionItemLabelDetails', {}, { detail: string, description: string });
const CompletionItem = struct('CompletionItem', { label: string }, {
  labelDetails: CompletionItemLabelDetails,
  kind: CompletionItemKind,
  tags: array(CompletionItemTag),
  detail: string,
  documentation: or(string, MarkupContent),
  deprecated: boolean,
  preselect: boolean,
  sortText: string,
  filterText: string,
  insertText: string,
  insertTextFormat: InsertTextFormat,
  insertTextMode: InsertTextMode,
  textEdit: or(TextEdit, InsertReplaceEdit),
  textEditText: string,
  additionalTextEdits: array(TextEdit),
  commitCharacters: array(string),
  command: Command,
  data: any,
});
const EditRangeWithInsertReplace = struct('EditRangeWithInsertReplace', { insert: Range, replace: Range });
const CompletionItemDefaults = struct('CompletionItemDefaults', {}, {
  commitCharacters: array(string),
  editRange: or(Range, EditRangeWithInsertReplace),
  insertTextFormat: InsertTextFormat,
  insertTextMode: InsertTextMode,
  data: any,
});
const CompletionItemApplyKinds = struct('CompletionItemApplyKinds', {}, { commitCharacters: ApplyKind, data: ApplyKind });
const CompletionList = struct('CompletionList', { isIncomplete: boolean, items: array(CompletionItem) }, {
  itemDefaults: CompletionItemDefaults,
  applyKind: CompletionItemApplyKinds,
});

// Inline completion (3.18).
const StringValue = struct('StringValue', { kind: literal('snippet'), value: string });
const InlineCompletionItem = struct('InlineCompletionItem', { insertText: or(string, StringValue) }, {
  filterText: string,
  range: Range,
  command: Command,
});
const InlineCompletionList = struct('InlineCompletionList', { items: array(InlineCompletionItem) });

// Server capabilities. The properties dfill announces are checked in depth.
const WorkDoneProgressOptions = struct('WorkDoneProgressOptions', {}, { workDoneProgress: boolean });
const TextDocumentSyncKind = literal(0, 1, 2);
const SaveOptions = struct('SaveOptions', {}, { includeText: boolean });
const TextDocumentSyncOptions = struct('TextDocumentSyncOptions', {}, {
  openClose: boolean,
  change: TextDocumentSyncKind,
  willSave: boolean,
  willSaveWaitUntil: boolean,
  save: or(boolean, SaveOptions),
});
const CompletionOptions = struct('CompletionOptions', {}, {
  workDoneProgress: boolean,
  triggerCharacters: array(string),
  allCommitCharacters: array(string),
  resolveProvider: boolean,
  completionItem: struct('ServerCompletionItemOptions', {}, { labelDetailsSupport: boolean }),
});
const InlineCompletionOptions = WorkDoneProgressOptions;
const booleanOrOptions = or(boolean, object);
const ServerCapabilities = struct('ServerCapabilities', {}, {
  positionEncoding: string, // PositionEncodingKind: 'utf-8' | 'utf-16' | 'utf-32' or a custom value
  textDocumentSync: or(TextDocumentSyncOptions, TextDocumentSyncKind),
  completionProvider: CompletionOptions,
  inlineCompletionProvider: or(boolean, InlineCompletionOptions),
  notebookDocumentSync: object,
  hoverProvider: booleanOrOptions,
  signatureHelpProvider: object,
  declarationProvider: booleanOrOptions,
  definitionProvider: booleanOrOptions,
  typeDefinitionProvider: booleanOrOptions,
  implementationProvider: booleanOrOptions,
  referencesProvider: booleanOrOptions,
  documentHighlightProvider: booleanOrOptions,
  documentSymbolProvider: booleanOrOptions,
  codeActionProvider: booleanOrOptions,
  codeLensProvider: object,
  documentLinkProvider: object,
  colorProvider: booleanOrOptions,
  workspaceSymbolProvider: booleanOrOptions,
  documentFormattingProvider: booleanOrOptions,
  documentRangeFormattingProvider: booleanOrOptions,
  documentOnTypeFormattingProvider: object,
  renameProvider: booleanOrOptions,
  foldingRangeProvider: booleanOrOptions,
  selectionRangeProvider: booleanOrOptions,
  executeCommandProvider: object,
  callHierarchyProvider: booleanOrOptions,
  linkedEditingRangeProvider: booleanOrOptions,
  semanticTokensProvider: object,
  monikerProvider: booleanOrOptions,
  typeHierarchyProvider: booleanOrOptions,
  inlineValueProvider: booleanOrOptions,
  inlayHintProvider: booleanOrOptions,
  diagnosticProvider: object,
  workspace: object,
  experimental: any,
});
const ServerInfo = struct('ServerInfo', { name: string }, { version: string });
// InitializeResult allows custom properties ([custom: string]: LSPAny).
const InitializeResult = struct('InitializeResult', { capabilities: ServerCapabilities }, { serverInfo: ServerInfo }, { open: true });

// Window and workspace messages from the server.
const MessageType = literal(1, 2, 3, 4, 5); // Error, Warning, Info, Log, Debug (3.18)
const ShowMessageParams = struct('ShowMessageParams', { type: MessageType, message: string });
const LogMessageParams = struct('LogMessageParams', { type: MessageType, message: string });
const WorkDoneProgressCreateParams = struct('WorkDoneProgressCreateParams', { token: ProgressToken });
const WorkDoneProgressBegin = struct('WorkDoneProgressBegin', { kind: literal('begin'), title: string }, {
  cancellable: boolean, message: string, percentage: uinteger,
});
const WorkDoneProgressReport = struct('WorkDoneProgressReport', { kind: literal('report') }, {
  cancellable: boolean, message: string, percentage: uinteger,
});
const WorkDoneProgressEnd = struct('WorkDoneProgressEnd', { kind: literal('end') }, { message: string });
const WorkDoneProgress = or(WorkDoneProgressBegin, WorkDoneProgressReport, WorkDoneProgressEnd);
const ProgressParams = struct('ProgressParams', { token: ProgressToken, value: any });
const ConfigurationItem = struct('ConfigurationItem', {}, { scopeUri: string, section: string });
const ConfigurationParams = struct('ConfigurationParams', { items: array(ConfigurationItem) });

// Results by request method (LSP 3.18: requests[].result).
const results = {
  'initialize': InitializeResult,
  'shutdown': nul,
  'textDocument/completion': or(CompletionList, array(CompletionItem), nul),
  'textDocument/inlineCompletion': or(InlineCompletionList, array(InlineCompletionItem), nul),
};

// Params of what the server sends to the client, by method.
const serverMessages = {
  'window/showMessage': ShowMessageParams,
  'window/logMessage': LogMessageParams,
  '$/progress': ProgressParams,
  'window/workDoneProgress/create': WorkDoneProgressCreateParams,
  'workspace/configuration': ConfigurationParams,
};

// The JSON-RPC 2.0 error object of a response.
const ResponseError = struct('ResponseError', { code: integer, message: string }, { data: any });

module.exports = {
  results,
  serverMessages,
  ResponseError,
  WorkDoneProgress,
  describe,
};
