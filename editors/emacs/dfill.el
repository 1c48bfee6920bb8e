;;; dfill.el --- Eglot client for the dfill inline-completion server  -*- lexical-binding: t; -*-

;; Version: 0.2.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9") (jsonrpc "1.0.14"))
;; Keywords: languages, tools, convenience

;;; Commentary:

;; dfill is a language server that completes code with a masked
;; diffusion language model.  This file connects it to Emacs through
;; Eglot:
;;
;;  - `dfill-eglot-setup' registers "dfill serve" in
;;    `eglot-server-programs' for the major modes of the languages
;;    dfill handles (`dfill-language-modes'), with its settings
;;    (`dfill-model', `dfill-steps', ...) sent as initializationOptions
;;    and answered to workspace/configuration under the section "dfill".
;;
;;  - `dfill-inline-mode' shows the server's textDocument/inlineCompletion
;;    answer as ghost text after point, after a short idle time or on
;;    demand (M-RET), and lets you accept it (M-RET), accept one word
;;    (M-f), cycle through candidates (M-n, M-p) or dismiss it (C-g).
;;
;; Quick start:
;;
;;   (add-to-list 'load-path "/path/to/dfill/editors/emacs")
;;   (require 'dfill)
;;   (dfill-eglot-setup)
;;   (add-hook 'go-mode-hook #'eglot-ensure)
;;
;; Written against the Eglot of Debian bookworm (1.9, Emacs 28) and the
;; Eglot bundled with Emacs 29 and later: where their function names
;; differ, dfill calls whichever the running Eglot has.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'jsonrpc)
(require 'eglot)

(defgroup dfill nil
  "Inline code completion from the dfill language server."
  :group 'tools
  :prefix "dfill-")

;;;; Settings

(defun dfill--set-and-reconfigure (symbol value)
  "Set SYMBOL to VALUE and push the new settings to running servers."
  (set-default symbol value)
  (when (fboundp 'dfill-reconfigure)
    (ignore-errors (dfill-reconfigure))))

(defcustom dfill-executable "dfill"
  "The dfill program: a name looked up in `exec-path' or an absolute file name."
  :type 'string)

(defcustom dfill-server-args nil
  "Extra command-line arguments for \"dfill serve\".
For example (\"--log-file\" \"/tmp/dfill.log\" \"--log-level\" \"debug\")."
  :type '(repeat string))

(defcustom dfill-language-modes
  '(("go" go-mode go-ts-mode)
    ("python" python-mode python-ts-mode)
    ("javascript" js-mode js-ts-mode)
    ("typescript" typescript-mode typescript-ts-mode)
    ("typescriptreact" tsx-ts-mode)
    ("rust" rust-mode rust-ts-mode rustic-mode)
    ("c" c-mode c-ts-mode)
    ("cpp" c++-mode c++-ts-mode)
    ("java" java-mode java-ts-mode))
  "Major modes served by dfill, grouped by LSP language id.
Each element is (LANGUAGE-ID MODE...).  `dfill-eglot-setup' adds one
`eglot-server-programs' entry per element, so that every buffer is
opened with its own language id (Eglot 1.9 sends one id per server)."
  :type '(alist :key-type (string :tag "Language id")
                :value-type (repeat (symbol :tag "Major mode"))))

(defcustom dfill-model nil
  "GGUF model file for the server; nil for the model embedded in dfill."
  :type '(choice (const :tag "Embedded model" nil) file)
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-steps nil
  "Denoising steps per completion; nil for the server's default."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-algorithm nil
  "Which masked positions each denoising step unmasks first."
  :type '(choice (const :tag "Server default" nil)
                 (const "confidence") (const "margin") (const "entropy"))
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-threshold nil
  "Confidence threshold between 0 and 1; nil for the server's default."
  :type '(choice (const :tag "Server default" nil) float)
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-min-score nil
  "Least score between 0 and 1 a completion needs to be shown as you type.
The score estimates the chance that you keep the completion; nil uses
the model's calibrated threshold, 0 shows every completion."
  :type '(choice (const :tag "The model's threshold" nil) float)
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-max-tokens nil
  "Most tokens a completion may have; nil for the server's default."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-context-tokens nil
  "Tokens of surrounding code given to the model; nil for the default."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-debounce-ms nil
  "Milliseconds the server waits before it starts a completion."
  :type '(choice (const :tag "Server default" nil) natnum)
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-log-level nil
  "The server's log level (its log goes to `--log-file', see `dfill-server-args')."
  :type '(choice (const :tag "Server default" nil)
                 (const "debug") (const "info") (const "warn") (const "error"))
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-completion-items nil
  "Whether the server also answers textDocument/completion.
\"auto\" (the server's default) answers no plain items to a client
that shows inline completions, as this one does; \"always\" puts the
completions in `completion-at-point' as well; \"never\" never does."
  :type '(choice (const :tag "Server default (auto)" nil)
                 (const "auto") (const "always") (const "never"))
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-inline-show-denoising nil
  "If non-nil, show each denoising step as ghost text while it happens.
This turns on the server's dfill/denoise notifications."
  :type 'boolean
  :set #'dfill--set-and-reconfigure
  :initialize #'custom-initialize-default)

(defcustom dfill-inline-enable t
  "If non-nil, buffers that Eglot manages with dfill turn on `dfill-inline-mode'."
  :type 'boolean)

(defcustom dfill-inline-automatic t
  "If non-nil, ask for a suggestion whenever you stop typing.
When nil, suggestions come only from `dfill-inline-complete'."
  :type 'boolean)

(defcustom dfill-inline-idle-delay 0.2
  "Seconds of idle time after an edit before a suggestion is requested."
  :type 'number)

(defcustom dfill-inline-timeout 10
  "Seconds after which an unanswered suggestion request is given up."
  :type 'number)

(defface dfill-suggestion '((t :inherit shadow))
  "Face of the suggested text shown after point.")

(defface dfill-denoising '((t :inherit (shadow italic)))
  "Face of the text shown while the model is still denoising it.")

(defun dfill--settings (&optional full)
  "Return the \"dfill\" settings section as a plist.
Options left at nil are omitted, so that the server keeps its
defaults; with FULL they are sent as zero values, which reset a
running server to its defaults."
  (let ((plist nil))
    (pcase-dolist (`(,key ,value ,zero)
                   `((:model ,dfill-model "")
                     (:steps ,dfill-steps 0)
                     (:algorithm ,dfill-algorithm "")
                     (:threshold ,dfill-threshold 0)
                     (:minScore ,dfill-min-score nil)
                     (:maxTokens ,dfill-max-tokens 0)
                     (:contextTokens ,dfill-context-tokens 0)
                     (:debounceMs ,dfill-debounce-ms 0)
                     (:logLevel ,dfill-log-level nil)
                     (:completionItems ,dfill-completion-items nil)
                     (:denoiseNotifications
                      ,(if dfill-inline-show-denoising t :json-false) nil)))
      (cond (value (setq plist (plist-put plist key value)))
            ((and full zero) (setq plist (plist-put plist key zero)))))
    plist))

(defun dfill-workspace-configuration ()
  "Return `eglot-workspace-configuration' holding the dfill options.
Its value is (:dfill SETTINGS); use it to combine dfill's section with
other servers' ones, e.g. in a .dir-locals.el.  dfill's servers answer
workspace/configuration with these options anyway, overridden by any
:dfill section of `eglot-workspace-configuration'."
  (list :dfill (dfill--settings)))

(defun dfill--json-object (plist)
  "Return PLIST, or an empty JSON object if PLIST is empty."
  (or plist (make-hash-table :size 1)))

;;;; Eglot server class

(defclass dfill-lsp-server (eglot-lsp-server) ()
  :documentation "An Eglot connection to \"dfill serve\".")

(cl-defmethod eglot-initialization-options ((_server dfill-lsp-server))
  "Send the dfill options as initializationOptions."
  (list :dfill (dfill--json-object (dfill--settings))))

(cl-defmethod eglot-client-capabilities ((_server dfill-lsp-server))
  "Eglot's capabilities, plus textDocument.inlineCompletion."
  (let* ((caps (copy-sequence (cl-call-next-method)))
         (doc (copy-sequence (plist-get caps :textDocument))))
    (unless (plist-get doc :inlineCompletion)
      (setq doc (plist-put doc :inlineCompletion
                           (list :dynamicRegistration :json-false))))
    (plist-put caps :textDocument doc)))

(defun dfill--merge-plists (base over)
  "Return BASE with the keys of plist OVER set to OVER's values."
  (let ((out (copy-sequence base)))
    (cl-loop for (k v) on over by #'cddr
             do (setq out (plist-put out k v)))
    out))

(cl-defmethod eglot-handle-request
  ((_server dfill-lsp-server) (_method (eql workspace/configuration))
   &key items &allow-other-keys)
  "Answer section \"dfill\" with the dfill options.
A :dfill section of `eglot-workspace-configuration' overrides them."
  (let ((answers (append (cl-call-next-method) nil)))
    (apply #'vector
           (cl-loop for item across items
                    for answer = (pop answers)
                    collect
                    (if (equal (plist-get item :section) "dfill")
                        (dfill--json-object
                         (dfill--merge-plists (dfill--settings t)
                                              (and (consp answer) answer)))
                      answer)))))

(defun dfill--contact (&optional _interactive)
  "Return the Eglot contact for \"dfill serve\"."
  `(dfill-lsp-server ,dfill-executable "serve" ,@dfill-server-args))

(defun dfill--server-programs ()
  "Return the `eglot-server-programs' entries for dfill."
  (cl-loop for (language . modes) in dfill-language-modes
           collect (cons (mapcar (lambda (mode) (list mode :language-id language))
                                 modes)
                         #'dfill--contact)))

;;;###autoload
(defun dfill-eglot-setup ()
  "Make Eglot use dfill for the modes of `dfill-language-modes'.
Puts dfill's entries first in `eglot-server-programs' (replacing
those of an earlier call) and, if `dfill-inline-enable' is non-nil,
turns `dfill-inline-mode' on in the buffers dfill manages."
  (interactive)
  (setq eglot-server-programs
        (append (dfill--server-programs)
                (cl-remove-if (lambda (entry) (eq (cdr-safe entry) #'dfill--contact))
                              eglot-server-programs)))
  (add-hook 'eglot-managed-mode-hook #'dfill--on-eglot-managed))

(defun dfill--on-eglot-managed ()
  "Turn `dfill-inline-mode' on or off with Eglot's management of the buffer."
  (cond ((and (eglot-managed-p) (dfill--server))
         ;; Eglot 1.9 builds imenu from textDocument/documentSymbol without
         ;; checking that the server offers it, and dfill does not: each
         ;; menu-bar update would then report the server's error.
         (unless (dfill--server-capable :documentSymbolProvider)
           (remove-function (local 'imenu-create-index-function) 'eglot-imenu))
         (when dfill-inline-enable
           (dfill-inline-mode 1)))
        ((and (bound-and-true-p dfill-inline-mode) (not (eglot-managed-p)))
         (dfill-inline-mode -1))))

;;;; Eglot compatibility

(defun dfill--server-capable (&rest feats)
  "Non-nil if the current server has capability FEATS."
  (apply (if (fboundp 'eglot-server-capable) 'eglot-server-capable
           'eglot--server-capable)
         feats))

(defun dfill--range-region (range)
  "Return (BEG . END) markers for LSP RANGE in the current buffer."
  (funcall (if (fboundp 'eglot-range-region) 'eglot-range-region
             'eglot--range-region)
           range t))

(defun dfill--server ()
  "Return the current buffer's Eglot server if it offers inline completion."
  (when-let* ((server (eglot-current-server)))
    (and (jsonrpc-running-p server)
         (dfill--server-capable :inlineCompletionProvider)
         server)))

(defun dfill--servers ()
  "Return the running dfill servers."
  (when (boundp 'eglot--servers-by-project)
    (let (servers)
      (maphash (lambda (_project list)
                 (dolist (s list)
                   (when (and (cl-typep s 'dfill-lsp-server) (jsonrpc-running-p s))
                     (push s servers))))
               eglot--servers-by-project)
      servers)))

;;;; Commands on the server

(defun dfill-reconfigure ()
  "Send the current dfill options to every running dfill server.
The server is told that its configuration changed and asks for the
section \"dfill\" with workspace/configuration."
  (interactive)
  (dolist (server (dfill--servers))
    (jsonrpc-notify server :workspace/didChangeConfiguration '(:settings nil))))

(defun dfill-stats ()
  "Show the dfill server's statistics in the echo area."
  (interactive)
  (let* ((server (or (dfill--server) (user-error "No dfill server here")))
         (s (jsonrpc-request server :dfill/stats nil)))
    (message "dfill %s: %s completions (%s cancelled, %s from cache), model %.0f ms of %.0f ms, own p50 %.1f ms p95 %.1f ms%s"
             (or (plist-get s :model) "(no model)")
             (plist-get s :count) (plist-get s :cancelled) (plist-get s :cacheHits)
             (or (plist-get s :modelMs) 0) (or (plist-get s :totalMs) 0)
             (or (plist-get s :ownP50Ms) 0) (or (plist-get s :ownP95Ms) 0)
             (if-let* ((err (plist-get s :modelError)))
                 (format ", model error: %s" err)
               ""))))

;;;; Inline suggestions: state

(defvar-local dfill--overlay nil
  "The overlay showing the suggestion, or nil.")

(defvar-local dfill--items nil
  "The suggestions of the last answer: a list of plists
\(:beg MARKER :end MARKER :text STRING :tail STRING), where
BEG..END is the range the text replaces and TAIL the buffer text
after point in that range when the answer came.")

(defvar-local dfill--index 0
  "Index in `dfill--items' of the suggestion shown.")

(defvar-local dfill--invoked nil
  "Non-nil if `dfill--items' answer an invoked request (several candidates).")

(defvar-local dfill--shown-at nil
  "(POINT . TICK) when the suggestion was last drawn.")

(defvar-local dfill--pending nil
  "The request in flight, or nil.
A plist (:seq N :id ID :server S :uri U :position P :tick TICK).")

(defvar-local dfill--seq 0
  "Number of the latest inline completion request of this buffer.")

(defvar-local dfill--last-tick nil
  "`buffer-chars-modified-tick' after the previous command.")

(defvar-local dfill--showing nil
  "Non-nil while a suggestion is shown: activates `dfill-suggestion-map'.")

(defvar dfill--timer nil
  "Idle timer for the next automatic request.")

(defvar dfill--pending-buffers (make-hash-table :test #'equal)
  "Document URI -> buffer with a request in flight (for dfill/denoise).")

(defvar dfill-suggestion-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "M-RET") #'dfill-inline-accept)
    (define-key map (kbd "M-f") #'dfill-inline-accept-word)
    (define-key map (kbd "M-n") #'dfill-inline-next)
    (define-key map (kbd "M-p") #'dfill-inline-previous)
    (define-key map (kbd "C-g") #'dfill-inline-dismiss)
    map)
  "Keys active while a suggestion is shown.
To accept with TAB as well:
  (define-key dfill-suggestion-map (kbd \"TAB\") #\\='dfill-inline-accept)")

(defvar dfill--emulation-alist `((dfill--showing . ,dfill-suggestion-map))
  "Entry of `emulation-mode-map-alists' for `dfill-suggestion-map'.")

(defvar dfill-inline-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "M-RET") #'dfill-inline-complete)
    map)
  "Keys of `dfill-inline-mode'.")

(defconst dfill--own-commands
  '(dfill-inline-accept dfill-inline-accept-word dfill-inline-next
    dfill-inline-previous dfill-inline-complete dfill-inline-dismiss)
  "Commands that manage the suggestion themselves.")

;;;; Inline suggestions: the mode

;;;###autoload
(define-minor-mode dfill-inline-mode
  "Show dfill's inline completions as ghost text after point.

After `dfill-inline-idle-delay' seconds without typing, the dfill
server of the buffer (started by Eglot, see `dfill-eglot-setup') is
asked for a completion at point, and its first suggestion is shown
in the face `dfill-suggestion'.  While it is shown:

\\{dfill-suggestion-map}
Typing the suggestion's next characters keeps it; any other edit or
motion clears it.  \\[dfill-inline-complete] asks for suggestions at once."
  :lighter " dfill"
  :keymap dfill-inline-mode-map
  (if dfill-inline-mode
      (progn
        (add-to-list 'emulation-mode-map-alists 'dfill--emulation-alist)
        (setq dfill--last-tick (buffer-chars-modified-tick))
        (add-hook 'post-command-hook #'dfill--post-command nil t)
        (add-hook 'kill-buffer-hook #'dfill--cancel-pending nil t))
    (remove-hook 'post-command-hook #'dfill--post-command t)
    (remove-hook 'kill-buffer-hook #'dfill--cancel-pending t)
    (dfill--cancel-pending)
    (dfill--clear)))

;;;; Inline suggestions: requests

(defun dfill--flush-changes ()
  "Send Eglot's pending textDocument/didChange now."
  (when (fboundp 'eglot--signal-textDocument/didChange)
    (eglot--signal-textDocument/didChange)))

(defun dfill--cancel-pending ()
  "Cancel the request in flight, if any."
  (when dfill--pending
    (let ((server (plist-get dfill--pending :server))
          (id (plist-get dfill--pending :id)))
      (remhash (plist-get dfill--pending :uri) dfill--pending-buffers)
      (setq dfill--pending nil)
      (when (and id (jsonrpc-running-p server))
        (ignore-errors
          (jsonrpc-notify server :$/cancelRequest (list :id id)))))))

(defun dfill-inline-request (&optional invoked)
  "Ask the server for a suggestion at point; show it when it comes.
With INVOKED non-nil the request is an explicit one (triggerKind 1),
which may answer several candidates; otherwise it is automatic
\(triggerKind 2).  Returns the request's sequence number, or nil when
the buffer has no dfill server."
  (when-let* ((server (dfill--server)))
    (dfill--cancel-pending)
    (dfill--flush-changes)
    (let* ((buffer (current-buffer))
           (seq (cl-incf dfill--seq))
           (tick (buffer-chars-modified-tick))
           (pt (point))
           (params (append (eglot--TextDocumentPositionParams)
                           (list :context (list :triggerKind (if invoked 1 2)))))
           (uri (plist-get (plist-get params :textDocument) :uri))
           (ret (jsonrpc-async-request
                 server :textDocument/inlineCompletion params
                 :success-fn (lambda (result)
                               (dfill--on-answer buffer seq tick pt invoked result))
                 :error-fn (lambda (err) (dfill--on-error buffer seq err))
                 :timeout-fn (lambda () (dfill--on-error buffer seq nil))
                 :timeout dfill-inline-timeout)))
      (setq dfill--pending (list :seq seq :id (if (consp ret) (car ret) ret)
                                 :server server :uri uri
                                 :position (plist-get params :position)
                                 :tick tick))
      (puthash uri buffer dfill--pending-buffers)
      seq)))

(defun dfill--finish (seq)
  "Forget the pending request SEQ; non-nil if it was the latest one."
  (when (eql seq dfill--seq)
    (when dfill--pending
      (remhash (plist-get dfill--pending :uri) dfill--pending-buffers))
    (setq dfill--pending nil)
    t))

(defun dfill--on-error (buffer seq err)
  "Handle the failure ERR (nil for a timeout) of request SEQ from BUFFER."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (when (dfill--finish seq)
        (when (and dfill--overlay (not dfill--items)) ; denoising preview
          (dfill--clear))
        ;; -32800 RequestCancelled: superseded by a newer request.
        (unless (eql (plist-get err :code) -32800)
          (message "dfill: %s" (if err (or (plist-get err :message) err)
                                 "inline completion timed out")))))))

(defun dfill--on-answer (buffer seq tick pt invoked result)
  "Show RESULT, the answer to request SEQ made in BUFFER at PT and TICK.
The answer is dropped if a newer request was made, or if the buffer
changed or point moved since the request."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (when (and (dfill--finish seq) dfill-inline-mode)
        (if (or (/= tick (buffer-chars-modified-tick)) (/= pt (point)))
            (when (and dfill--overlay (not dfill--items)) (dfill--clear))
          (let ((items (dfill--parse-items result))
                (shown (dfill--current-item)))
            (cond
             ((null items)
              (dfill--clear)
              (when invoked (message "dfill: no suggestion here")))
             (t
              ;; An answer to M-n starts with the suggestion already shown.
              (let* ((same (and shown (equal (plist-get shown :text)
                                             (plist-get (car items) :text))))
                     (index (if (and same (cdr items)) 1 0)))
                (when (and same (null (cdr items)))
                  (message "dfill: no other suggestion"))
                (dfill--clear)
                (setq dfill--items items
                      dfill--invoked invoked)
                (dfill--show index))))))))))

(defun dfill--parse-items (result)
  "Return the usable suggestions of RESULT as plists (see `dfill--items')."
  (let ((items (cond ((vectorp result) result)
                     ((listp result) (plist-get result :items)))))
    (cl-loop
     for item across (or items [])
     for insert = (plist-get item :insertText)
     for text = (if (stringp insert) insert (plist-get insert :value))
     for range = (plist-get item :range)
     for region = (if range (dfill--range-region range)
                    (cons (copy-marker (point)) (copy-marker (point) t)))
     for beg = (car region)
     for end = (cdr region)
     if (and (stringp text) (not (string-empty-p text))
             (<= beg (point) end))
     collect (progn
               (set-marker-insertion-type end t)
               (list :beg beg :end end :text text
                     :tail (buffer-substring-no-properties (point) end)))
     else do (set-marker beg nil) (set-marker end nil))))

;;;; Inline suggestions: display

(defun dfill--current-item ()
  "Return the suggestion shown, or nil."
  (and dfill--overlay (nth dfill--index dfill--items)))

(defun dfill--ghost (item)
  "Return the part of ITEM's text still to insert at point, or nil.
Nil means the buffer no longer matches ITEM: the text before point
in ITEM's range must begin ITEM's text, and the text after point must
be the text it replaces."
  (let ((beg (plist-get item :beg))
        (end (plist-get item :end))
        (text (plist-get item :text)))
    (when (and (marker-buffer beg) (<= beg (point) end)
               (equal (buffer-substring-no-properties (point) end)
                      (plist-get item :tail)))
      (let ((typed (buffer-substring-no-properties beg (point))))
        (when (and (string-prefix-p typed text)
                   (< (length typed) (length text)))
          (substring text (length typed)))))))

(defun dfill--draw (text face)
  "Show TEXT at point in FACE, over the rest of the current item's range."
  (let* ((item (dfill--current-item))
         (end (if item (marker-position (plist-get item :end)) (point)))
         (shown (propertize text 'face face)))
    (put-text-property 0 (min 1 (length shown)) 'cursor t shown)
    (if dfill--overlay
        (move-overlay dfill--overlay (point) end)
      (setq dfill--overlay (make-overlay (point) end nil nil t))
      (overlay-put dfill--overlay 'priority 1000)
      (overlay-put dfill--overlay 'dfill t))
    (if (> end (point))
        ;; The suggestion replaces what follows point (closing characters):
        ;; show it in their place.
        (progn (overlay-put dfill--overlay 'after-string nil)
               (overlay-put dfill--overlay 'display shown))
      (overlay-put dfill--overlay 'display nil)
      (overlay-put dfill--overlay 'after-string shown))
    (setq dfill--showing t
          dfill--shown-at (cons (point) (buffer-chars-modified-tick)))))

(defun dfill--show (index)
  "Show suggestion INDEX of `dfill--items'; clear all if it does not fit."
  (setq dfill--index index)
  (let* ((item (nth index dfill--items))
         (ghost (and item (dfill--ghost item))))
    (if (not ghost)
        (dfill--clear)
      ;; `dfill--current-item' needs the overlay to exist.
      (unless dfill--overlay
        (setq dfill--overlay (make-overlay (point) (point) nil nil t)))
      (dfill--draw ghost 'dfill-suggestion))))

(defun dfill--clear ()
  "Remove the suggestion."
  (when dfill--overlay
    (delete-overlay dfill--overlay))
  (dolist (item dfill--items)
    (set-marker (plist-get item :beg) nil)
    (set-marker (plist-get item :end) nil))
  (setq dfill--overlay nil
        dfill--items nil
        dfill--index 0
        dfill--invoked nil
        dfill--showing nil
        dfill--shown-at nil))

(defun dfill-inline-suggestion ()
  "Return the text shown as a suggestion at point, or nil."
  (when dfill--overlay
    (when-let* ((s (or (overlay-get dfill--overlay 'after-string)
                      (overlay-get dfill--overlay 'display))))
      (substring-no-properties s))))

;;;; Inline suggestions: the command loop

(defun dfill--post-command ()
  "Keep, redraw or clear the suggestion after a command; schedule requests."
  (let ((tick (buffer-chars-modified-tick)))
    (unless (memq this-command dfill--own-commands)
      (when (and dfill--overlay
                 (not (equal dfill--shown-at (cons (point) tick))))
        ;; Point moved or the buffer changed: keep the suggestion only if
        ;; what was typed is its beginning.
        (let ((ghost (and dfill--items (dfill--ghost (dfill--current-item)))))
          (if (and ghost (/= tick (cdr dfill--shown-at)))
              (dfill--draw ghost 'dfill-suggestion)
            (dfill--clear))))
      (when (and (not (eql tick dfill--last-tick)) (not dfill--overlay))
        (dfill--cancel-pending)
        (when dfill-inline-automatic
          (dfill--schedule))))
    (setq dfill--last-tick tick)))

(defun dfill--schedule ()
  "Ask for a suggestion after `dfill-inline-idle-delay' seconds of idleness."
  (when (timerp dfill--timer) (cancel-timer dfill--timer))
  (setq dfill--timer (run-with-idle-timer dfill-inline-idle-delay nil
                                          #'dfill--on-idle (current-buffer))))

(defun dfill--on-idle (buffer)
  "Request an automatic suggestion in BUFFER if it is still the one edited."
  (setq dfill--timer nil)
  (when (and (buffer-live-p buffer) (eq buffer (window-buffer (selected-window))))
    (with-current-buffer buffer
      (when (and dfill-inline-mode (not dfill--overlay) (not (minibufferp))
                 (eql dfill--last-tick (buffer-chars-modified-tick)))
        (condition-case err
            (dfill-inline-request nil)
          (error (message "dfill: %s" (error-message-string err))))))))

;;;; Inline suggestions: commands

(defun dfill-inline-complete ()
  "Ask for suggestions at point now (several candidates when there are)."
  (interactive)
  (unless (dfill--server)
    (user-error "dfill: this buffer has no dfill server (see `dfill-eglot-setup')"))
  (dfill-inline-request t))

(defun dfill-inline-accept ()
  "Insert the suggestion shown, replacing the range it completes."
  (interactive)
  (let* ((item (or (dfill--current-item) (user-error "No dfill suggestion")))
         (ghost (dfill--ghost item))
         (beg (marker-position (plist-get item :beg)))
         (end (marker-position (plist-get item :end)))
         (text (plist-get item :text)))
    (dfill--clear)
    (if ghost
        (progn (delete-region (point) end)
               (insert ghost))
      (delete-region beg end)
      (goto-char beg)
      (insert text))))

(defun dfill-inline-accept-word ()
  "Insert the next word of the suggestion shown and keep showing the rest."
  (interactive)
  (let* ((item (or (dfill--current-item) (user-error "No dfill suggestion")))
         (ghost (or (dfill--ghost item) (user-error "No dfill suggestion")))
         (word (if (string-match "\\`[[:space:]\n]*\\(?:[[:word:]_]+\\|[^[:space:]\n]\\)"
                                 ghost)
                   (match-string 0 ghost)
                 ghost)))
    (if (= (length word) (length ghost))
        (dfill-inline-accept)
      (insert word)
      (dfill--draw (substring ghost (length word)) 'dfill-suggestion))))

(defun dfill--cycle (delta)
  "Show the suggestion DELTA places away, asking for candidates if needed."
  (cond
   ((and dfill--items (or dfill--invoked (cdr dfill--items)))
    (let ((n (length dfill--items)))
      (if (= n 1)
          (message "dfill: no other suggestion")
        (let ((start dfill--index) (i dfill--index) ghost)
          ;; Skip candidates that no longer fit what was typed.
          (while (progn (setq i (mod (+ i delta) n))
                        (setq ghost (dfill--ghost (nth i dfill--items)))
                        (and (not ghost) (/= i start))))
          (setq dfill--index i)
          (dfill--draw ghost 'dfill-suggestion)
          (message "dfill: suggestion %d/%d" (1+ i) n)))))
   (t (dfill-inline-request t))))

(defun dfill-inline-next ()
  "Show the next suggestion (asks the server for candidates the first time)."
  (interactive)
  (dfill--cycle 1))

(defun dfill-inline-previous ()
  "Show the previous suggestion (asks the server for candidates the first time)."
  (interactive)
  (dfill--cycle -1))

(defun dfill-inline-dismiss ()
  "Remove the suggestion shown."
  (interactive)
  (dfill--cancel-pending)
  (dfill--clear))

;;;; Denoising preview

(cl-defmethod eglot-handle-notification
  ((_server dfill-lsp-server) (_method (eql dfill/denoise))
   &key uri position step steps text &allow-other-keys)
  "Show the text of denoising STEP of STEPS while its request is pending."
  (let ((buffer (gethash uri dfill--pending-buffers)))
    (when (and dfill-inline-show-denoising (buffer-live-p buffer) (stringp text))
      (with-current-buffer buffer
        (when (and dfill--pending (not dfill--items)
                   (equal position (plist-get dfill--pending :position))
                   (eql (plist-get dfill--pending :tick) (buffer-chars-modified-tick)))
          (dfill--draw (format "%s  [%s/%s]" text step steps) 'dfill-denoising)
          ;; A preview is not a suggestion: no keys, and any command clears it.
          (setq dfill--showing nil))))))

(provide 'dfill)
;;; dfill.el ends here
