;;; test-tty.el --- set-up for the terminal part of test.sh  -*- lexical-binding: t; -*-

;; Loaded by `emacs -nw -q --no-site-file -l test-tty.el' inside tmux.  Opens
;; DFILL_TEST_FILE with dfill as its Eglot server, puts point on line 8
;; (the blank line inside `if err != nil {'), writes the server's pid
;; to DFILL_TEST_PID and "ready" to DFILL_TEST_READY.  test.sh then types as a user would: the idle timer,
;; the drawing and the keys are the real ones.

;;; Code:

;; Started with --no-site-file: Debian's start-up (which puts the
;; elpa-* packages on `load-path') runs here, after switching off native
;; compilation, which would otherwise compile those packages in the
;; background in this fresh $HOME on every run.
(setq native-comp-deferred-compilation nil)
(when (load "debian-startup" t t)
  (debian-startup debian-emacs-flavor))

(require 'dfill)
(require 'go-mode)

(setq inhibit-startup-screen t
      make-backup-files nil
      auto-save-default nil
      eglot-sync-connect t
      eglot-connect-timeout 20
      dfill-executable (getenv "DFILL")
      dfill-server-args (list "--log-file" (getenv "DFILL_TEST_LOG"))
      dfill-min-score 0.0)
(dfill-eglot-setup)

(add-hook 'emacs-startup-hook
          (lambda ()
            (find-file (getenv "DFILL_TEST_FILE"))
            (apply #'eglot (eglot--guess-contact))
            (let ((pid (process-id (jsonrpc--process (eglot-current-server))))
                  (state (if (and (eglot-managed-p) dfill-inline-mode)
                             "ready" "not managed")))
              (with-temp-file (getenv "DFILL_TEST_PID")
                (insert (format "%s\n" pid)))
              (goto-char (point-min))
              (forward-line 7)
              (with-temp-file (getenv "DFILL_TEST_READY")
                (insert state)))))

;;; test-tty.el ends here
