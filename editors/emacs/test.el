;;; test.el --- end-to-end test of dfill.el: Emacs, Eglot and the real server  -*- lexical-binding: t; -*-

;; Run by test.sh as
;;   emacs --batch -L DIR-WITH-DFILL.ELC -l test.el
;; with DFILL (the server binary), DFILL_TEST_SAMPLE (a Go file whose
;; line 8 is the blank line inside `if err != nil {'), DFILL_TEST_DIR
;; (a scratch directory) and DFILL_TEST_ARTIFACTS (where logs and
;; buffer dumps go).  Exits 0 when every check passed, 1 otherwise.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'dfill)
(require 'go-mode)

(defvar dfill-test-artifacts (getenv "DFILL_TEST_ARTIFACTS"))
(defvar dfill-test-failures 0)
(defvar dfill-test-checks 0)
(defvar dfill-test-server nil)

(defun dfill-test-log (fmt &rest args)
  "Print FMT with ARGS on stdout."
  (princ (concat (apply #'format fmt args) "\n")))

(defun dfill-test-artifact (name)
  "Return the file name of artifact NAME."
  (expand-file-name name dfill-test-artifacts))

(defmacro dfill-test-check (description form)
  "Check that FORM is non-nil; DESCRIPTION says what it means."
  (declare (indent 1))
  `(let ((ok (condition-case err ,form
               ((error quit) (dfill-test-log "     error: %S" err) nil))))
     (cl-incf dfill-test-checks)
     (if ok
         (dfill-test-log "ok   %s" ,description)
       (cl-incf dfill-test-failures)
       (dfill-test-log "FAIL %s\n     form: %S" ,description ',form))
     ok))

(defun dfill-test-equal (description want got)
  "Check that GOT equals WANT."
  (or (dfill-test-check description (equal want got))
      (dfill-test-log "     want %S\n     got  %S" want got)))

(defun dfill-test-wait (pred seconds)
  "Process output until PRED is non-nil or SECONDS pass; return PRED's value."
  (let ((deadline (+ (float-time) seconds)) value)
    (while (and (not (setq value (funcall pred)))
                (< (float-time) deadline))
      (accept-process-output nil 0.05))
    value))

(defun dfill-test-finish ()
  "Dump the logs, stop the server and exit with the test's status."
  (ignore-errors
    (when-let* ((events (and dfill-test-server (jsonrpc-events-buffer dfill-test-server))))
      (with-current-buffer events
        (write-region nil nil (dfill-test-artifact "eglot-events.log") nil 'silent))))
  (when (and dfill-test-server (jsonrpc-running-p dfill-test-server))
    ;; Shut the server down by hand: Eglot 1.9 kills the process right
    ;; after sending exit, which would hide whether the server exits.
    (let ((proc (jsonrpc--process dfill-test-server)))
      (condition-case err
          (progn
            (jsonrpc-request dfill-test-server :shutdown nil :timeout 5)
            (jsonrpc-notify dfill-test-server :exit nil)
            (dfill-test-check "the server exits after shutdown and exit"
              (dfill-test-wait (lambda () (not (process-live-p proc))) 5))
            (dfill-test-equal "the server's exit status" 0 (process-exit-status proc)))
        (error (dfill-test-abort-quietly "shutting the server down: %S" err)))
      (when (process-live-p proc) (delete-process proc))))
  (ignore-errors
    (with-current-buffer (messages-buffer)
      (write-region nil nil (dfill-test-artifact "messages.log") nil 'silent)))
  (dfill-test-log "%d checks, %d failed" dfill-test-checks dfill-test-failures)
  (kill-emacs (if (zerop dfill-test-failures) 0 1)))

(defun dfill-test-abort-quietly (fmt &rest args)
  "Count a failure described by FMT and ARGS."
  (cl-incf dfill-test-failures)
  (dfill-test-log "FAIL %s" (apply #'format fmt args)))

(defun dfill-test-abort (fmt &rest args)
  "Report a failure that stops the test, then finish."
  (apply #'dfill-test-abort-quietly fmt args)
  (dfill-test-finish))

;;;; Helpers on the Go buffer

(defconst dfill-test-line 8 "The blank line inside `if err != nil {'.")

(defun dfill-test-goto-line ()
  "Move to the start of `dfill-test-line'."
  (goto-char (point-min))
  (forward-line (1- dfill-test-line)))

(defun dfill-test-line-text ()
  "Return the text of `dfill-test-line'."
  (save-excursion
    (dfill-test-goto-line)
    (buffer-substring-no-properties (line-beginning-position) (line-end-position))))

(defun dfill-test-reset-line (text)
  "Make `dfill-test-line' hold TEXT, with point at its end and no suggestion."
  (dfill-inline-dismiss)
  (dfill-test-goto-line)
  (delete-region (line-beginning-position) (line-end-position))
  (insert text)
  ;; As after a command: the next request sees a settled buffer.
  (setq dfill--last-tick (buffer-chars-modified-tick)))

(defun dfill-test-request (invoked)
  "Ask for a suggestion at point and wait for the answer."
  (let ((seq (dfill-inline-request invoked)))
    (dfill-test-check (format "request %s was sent" seq) seq)
    (dfill-test-check "the answer came within 10 s"
      (dfill-test-wait (lambda () (null dfill--pending)) 10))))

(defun dfill-test-keys (keys)
  "Run KEYS (a `kbd' string) through the command loop."
  (condition-case err
      (execute-kbd-macro (kbd keys))
    ((error quit)
     (dfill-test-abort-quietly "keys %s signalled %S" keys err))))

(defun dfill-test-screen (name)
  "Write the buffer as the user sees it to artifact NAME.
The suggestion appears where it is drawn, between « and », with
the cursor as |."
  (let ((text (buffer-substring-no-properties (point-min) (point-max)))
        (pos (1- (point)))
        (ghost (dfill-inline-suggestion)))
    (with-temp-file (dfill-test-artifact name)
      (insert (substring text 0 pos) "|"
              (if ghost (concat "«" ghost "»") "")
              (substring text (if (and dfill--overlay ghost)
                                  (1- (overlay-end dfill--overlay))
                                pos))))))

;;;; The test

(defun dfill-test-run ()
  "Run every check."
  (let* ((dfill (or (getenv "DFILL") (dfill-test-abort "DFILL is not set")))
         (dir (file-name-as-directory
               (expand-file-name "project" (getenv "DFILL_TEST_DIR"))))
         (file (expand-file-name "sample.go" dir))
         original expected)
    (make-directory dir t)
    (copy-file (getenv "DFILL_TEST_SAMPLE") file t)
    (setq original (with-temp-buffer
                     (set-buffer-multibyte nil)
                     (insert-file-contents-literally file)
                     (buffer-string)))
    (setq expected (replace-regexp-in-string
                    "if err != nil {\n\n" "if err != nil {\n\t\treturn err\n"
                    original t t))
    (dfill-test-check "the sample has the blank line inside `if err != nil {'"
      (not (equal expected original)))

    ;; Set everything non-interactive.
    (dfill-test-check "dfill is loaded from its byte-compiled file"
      (string-suffix-p ".elc" (locate-library "dfill")))
    (setq dfill-executable dfill
          dfill-server-args (list "--log-file" (dfill-test-artifact "dfill.log")
                                  "--log-level" "debug")
          eglot-sync-connect t
          eglot-connect-timeout 20
          eglot-autoreconnect nil
          ;; Eglot sends didChange only after this idle time, which never
          ;; comes in batch: the client must flush changes itself.
          eglot-send-changes-idle-time 3600
          dfill-inline-idle-delay 3600
          ;; Every suggestion is shown, whatever its score: the checks
          ;; test the client, not the embedded model's threshold.
          dfill-min-score 0.0)
    (dfill-eglot-setup)
    (dfill-test-check "dfill's entry comes first in `eglot-server-programs'"
      (eq (cdr (car eglot-server-programs)) 'dfill--contact))

    (find-file file)
    (dfill-test-check "the file is in go-mode" (derived-mode-p 'go-mode))
    (condition-case err
        (apply #'eglot (eglot--guess-contact))
      (error (dfill-test-abort "eglot could not connect: %S" err)))
    (setq dfill-test-server (eglot-current-server))
    (unless dfill-test-server (dfill-test-abort "no Eglot server after connecting"))
    (with-temp-file (dfill-test-artifact "dfill.pid")
      (insert (format "%s\n" (process-id (jsonrpc--process dfill-test-server)))))
    (dfill-test-check "the server is a dfill-lsp-server"
      (cl-typep dfill-test-server 'dfill-lsp-server))
    (dfill-test-check "the buffer is managed by Eglot"
      (dfill-test-wait #'eglot-managed-p 5))
    (dfill-test-check "dfill-inline-mode is on" dfill-inline-mode)
    (dfill-test-check "the server offers inline completion"
      (dfill--server-capable :inlineCompletionProvider))
    (dfill-test-equal "workspace/configuration answers the dfill section"
                      :json-false
                      (plist-get (aref (eglot-handle-request
                                        dfill-test-server 'workspace/configuration
                                        :items [(:section "dfill")])
                                       0)
                                 :denoiseNotifications))
    (let (stats)
      (dfill-test-check "the server loads its model (dfill/stats names it)"
        (dfill-test-wait
         (lambda ()
           (setq stats (jsonrpc-request dfill-test-server :dfill/stats nil))
           (or (plist-get stats :model) (progn (sleep-for 0.1) nil)))
         10))
      (dfill-test-log "     stats: %S" stats)
      (dfill-test-check "M-x dfill-stats names the model"
        (string-match-p (regexp-quote (plist-get stats :model)) (dfill-stats))))

    ;; A. Blank line: the automatic suggestion, accepted with M-RET.
    (dfill-test-reset-line "")
    (dfill-test-request nil)
    (dfill-test-screen "A-suggestion-blank-line.txt")
    (dfill-test-equal "A: the overlay shows the server's suggestion"
                      "\t\treturn err" (dfill-inline-suggestion))
    (dfill-test-check "A: the overlay is at point"
      (and dfill--overlay (= (overlay-start dfill--overlay) (point))))
    (dfill-test-check "A: the suggestion is in the face dfill-suggestion"
      (eq (get-text-property 1 'face (overlay-get dfill--overlay 'after-string))
          'dfill-suggestion))
    (dfill-test-check "A: the buffer itself is unchanged"
      (equal (dfill-test-line-text) ""))
    (dfill-test-keys "M-RET")
    (dfill-test-equal "A: M-RET inserts the suggestion" "\t\treturn err" (dfill-test-line-text))
    (dfill-test-check "A: the overlay is gone" (null (dfill-inline-suggestion)))
    (save-buffer)
    (dfill-test-equal "A: the saved file holds `return err' and is otherwise unchanged"
                      expected
                      (with-temp-buffer
                        (set-buffer-multibyte nil)
                        (insert-file-contents-literally file)
                        (buffer-string)))

    ;; B. An answer to a buffer that changed meanwhile is dropped.
    (dfill-test-reset-line "")
    (let ((seq (dfill-inline-request nil)))
      ;; An edit elsewhere, made before Emacs reads the answer: the answer
      ;; would still fit at point, but it answers an older text.
      (save-excursion (goto-char (point-max)) (insert "// edited\n"))
      (dfill-test-check "B: the request was sent" seq)
      (dfill-test-check "B: the answer came"
        (dfill-test-wait (lambda () (or (null dfill--pending)
                                        (/= seq (plist-get dfill--pending :seq))))
                         10))
      (dfill-test-check "B: the stale answer is not shown"
        (null (dfill-inline-suggestion)))
      (save-excursion
        (goto-char (point-max))
        (delete-region (- (point) (length "// edited\n")) (point))))

    ;; C. Invoked request (M-RET with nothing shown), cycling, dismissing.
    (dfill-test-reset-line "")
    (dfill-test-keys "M-RET")
    (dfill-test-check "C: M-RET asks for a suggestion and it comes"
      (dfill-test-wait (lambda () (null dfill--pending)) 10))
    (dfill-test-equal "C: the invoked request shows the suggestion"
                      "\t\treturn err" (dfill-inline-suggestion))
    (dfill-test-log "     invoked candidates: %S"
                    (mapcar (lambda (i) (plist-get i :text)) dfill--items))
    (dfill-test-keys "M-n")
    (dfill-test-check "C: M-n keeps a suggestion shown"
      (member (dfill-inline-suggestion)
              (mapcar (lambda (i) (plist-get i :text)) dfill--items)))
    (dfill-test-keys "M-p")
    (dfill-test-equal "C: M-p goes back to the first" "\t\treturn err"
                      (dfill-inline-suggestion))
    (dfill-test-keys "C-g")
    (dfill-test-check "C: C-g dismisses it" (null (dfill-inline-suggestion)))
    (dfill-test-equal "C: dismissing leaves the buffer alone" "" (dfill-test-line-text))
    (dfill-test-request nil)
    (dfill-test-check "C: shown again" (dfill-inline-suggestion))
    (dfill-test-keys "C-p")
    (dfill-test-check "C: moving away clears it" (null (dfill-inline-suggestion)))

    ;; D. Typed indentation: the change must reach the server before the
    ;; request; then typing through, accepting a word, accepting the rest.
    (dfill-test-reset-line "\t\t")
    (dfill-test-request nil)
    (dfill-test-screen "D-suggestion-after-indent.txt")
    (dfill-test-equal "D: after typed indentation the suggestion is `return err'"
                      "return err" (dfill-inline-suggestion))
    (dfill-test-keys "r")
    (dfill-test-equal "D: typing its first letter keeps the rest" "eturn err"
                      (dfill-inline-suggestion))
    (dfill-test-check "D: ... without a new request" (null dfill--pending))
    (dfill-test-keys "M-f")
    (dfill-test-equal "D: M-f accepts one word" "\t\treturn" (dfill-test-line-text))
    (dfill-test-equal "D: ... and shows the rest" " err" (dfill-inline-suggestion))
    (dfill-test-screen "D-after-accept-word.txt")
    (dfill-test-keys "M-RET")
    (dfill-test-equal "D: M-RET accepts the rest" "\t\treturn err" (dfill-test-line-text))
    (dfill-test-check "D: the overlay is gone" (null (dfill-inline-suggestion)))
    (dfill-test-screen "D-accepted.txt")
    (save-buffer)
    (dfill-test-equal "D: the saved file holds `return err' and is otherwise unchanged"
                      expected
                      (with-temp-buffer
                        (set-buffer-multibyte nil)
                        (insert-file-contents-literally file)
                        (buffer-string)))

    ;; F. A changed option reaches the running server: with
    ;; `dfill-inline-show-denoising' the server sends dfill/denoise
    ;; notifications, drawn as a preview until the answer comes.
    (customize-set-variable 'dfill-inline-show-denoising t)
    (dfill-test-check "F: the server pulls the changed options"
      (dfill-test-wait
       (lambda ()
         (with-current-buffer (jsonrpc-events-buffer dfill-test-server)
           (save-excursion
             (goto-char (point-min))
             (re-search-forward
              "denoiseNotifications\"?:?[ \t]*\\(?:t\\|true\\)\\_>" nil t))))
       5))
    (let ((frames nil))
      (advice-add 'dfill--draw :before
                  (lambda (text face)
                    (when (eq face 'dfill-denoising) (push text frames)))
                  '((name . dfill-test-frames)))
      (dfill-test-reset-line "")
      ;; The server applies pulled options asynchronously: allow a retry.
      (dotimes (_ 3)
        (unless frames
          (dfill-inline-dismiss)
          (dfill-test-request nil)))
      (advice-remove 'dfill--draw 'dfill-test-frames)
      (setq frames (nreverse frames))
      (with-temp-file (dfill-test-artifact "F-denoising-frames.txt")
        (dolist (f frames) (insert f "\n----\n")))
      (dfill-test-check "F: denoising steps were drawn as a preview" frames)
      (dfill-test-check "F: each preview names its step, e.g. [1/12]"
        (and frames
             (cl-every (lambda (f) (string-match-p "  \\[[0-9]+/[0-9]+\\]\\'" f))
                       frames)))
      (dfill-test-equal "F: the answer replaces the preview" "\t\treturn err"
                        (dfill-inline-suggestion))
      (dfill-test-check "F: the answer is in the face dfill-suggestion"
        (eq (get-text-property 1 'face (overlay-get dfill--overlay 'after-string))
            'dfill-suggestion)))
    (customize-set-variable 'dfill-inline-show-denoising nil)

    ;; G. Client logic the demo model does not reach, fed with answers of
    ;; the server's shape: a range that replaces the closing characters
    ;; after point, and several candidates to cycle through.
    (dfill-test-reset-line "\t\tf()")
    (backward-char 1)
    (let ((line (1- dfill-test-line)))
      (dfill--on-answer
       (current-buffer) dfill--seq (buffer-chars-modified-tick) (point) t
       `(:items [(:insertText "x)"
                  :range (:start (:line ,line :character 4) :end (:line ,line :character 5)))
                 (:insertText "y, z)"
                  :range (:start (:line ,line :character 4) :end (:line ,line :character 5)))])))
    (dfill-test-screen "G-suggestion-replacing-paren.txt")
    (dfill-test-equal "G: a suggestion replacing `)' is drawn over it" "x)"
                      (dfill-inline-suggestion))
    (dfill-test-check "G: ... with the `)' hidden under the overlay"
      (and (overlay-get dfill--overlay 'display)
           (equal (buffer-substring (overlay-start dfill--overlay)
                                    (overlay-end dfill--overlay))
                  ")")))
    (dfill-test-keys "M-n")
    (dfill-test-equal "G: M-n shows the second candidate" "y, z)" (dfill-inline-suggestion))
    (dfill-test-keys "M-n")
    (dfill-test-equal "G: M-n wraps around to the first" "x)" (dfill-inline-suggestion))
    (dfill-test-keys "M-p")
    (dfill-test-equal "G: M-p goes back to the second" "y, z)" (dfill-inline-suggestion))
    (dfill-test-keys "M-RET")
    (dfill-test-equal "G: accepting replaces the range" "\t\tf(y, z)" (dfill-test-line-text))
    (dfill-test-equal "G: ... and leaves point after the insertion" "\t\tf(y, z)"
                      (buffer-substring-no-properties (line-beginning-position) (point)))

    ;; E. Eglot's own completion-at-point works with the dfill server.
    (dfill-test-reset-line "\t\t")
    (let (capf candidates)
      (dfill-test-check "E: eglot-completion-at-point does not error"
        (progn (setq capf (eglot-completion-at-point))
               (setq candidates (all-completions "" (nth 2 capf)))
               t))
      (dfill-test-log "     completion candidates: %S"
                      (mapcar #'substring-no-properties candidates))
      (dfill-test-check "E: completion-at-point does not error"
        (progn (completion-at-point) t)))
    ;; With completionItems "always", plain completion offers the text too.
    (customize-set-variable 'dfill-completion-items "always")
    (dfill-test-check "E: the server pulls completionItems \"always\""
      (dfill-test-wait
       (lambda ()
         (with-current-buffer (jsonrpc-events-buffer dfill-test-server)
           (save-excursion
             (goto-char (point-min))
             (re-search-forward "completionItems\"?:?[ \t]*\"always\"" nil t))))
       5))
    (dfill-test-reset-line "\t\t")
    (let (candidates)
      ;; The server applies pulled options asynchronously: allow retries.
      (dotimes (_ 3)
        (unless (member "return err" candidates)
          (sleep-for 0.1)
          (setq candidates
                (mapcar #'substring-no-properties
                        (all-completions "" (nth 2 (eglot-completion-at-point)))))))
      (dfill-test-equal "E: with completionItems \"always\" completion-at-point offers it"
                        '("return err") candidates))
    (customize-set-variable 'dfill-completion-items nil)
    (set-buffer-modified-p nil)))

(condition-case err
    (dfill-test-run)
  ((error quit) (dfill-test-abort "unexpected error: %S" err)))
(dfill-test-finish)

;;; test.el ends here
