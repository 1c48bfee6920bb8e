// Package hub gets model files from the Hugging Face Hub and keeps them in
// a local cache: model references (catalog names and OWNER/REPO[:QUANT] as
// llama.cpp's -hf takes them), the Hub client (file list with sha256 from
// the API, downloads that follow redirects and resume with HTTP Range, a
// lock per file), the cache in Hugging Face's layout, and the catalog of
// known diffusion coders with the sampler settings their authors
// recommend.
//
// The cache uses Hugging Face's layout wherever it lives, so a file that
// huggingface_hub, llama.cpp or dfill downloaded is found by all three:
//
//	ROOT/models--OWNER--REPO/blobs/SHA256            the file, named by its hash
//	ROOT/models--OWNER--REPO/blobs/SHA256.incomplete a download in progress
//	ROOT/models--OWNER--REPO/snapshots/COMMIT/FILE   a relative symlink to the blob
//	ROOT/models--OWNER--REPO/refs/main               the commit main pointed at
//	ROOT/.locks/models--OWNER--REPO/SHA256.lock      held while one process downloads
//
// ROOT is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/dfill
// (the user cache directory's dfill folder). A blob is renamed into place
// only after its sha256 matched the one the Hub lists, so a file in the
// cache is always a verified one. Where symlinks cannot be made the blob is
// moved into the snapshot instead, as llama.cpp does.
package hub
