# Writes pretokenize.json: random strings split by the regular expressions
# llama.cpp and Hugging Face use (Python's `regex` module, which has \p{..}
# classes and lookahead), the reference for TestPreTokenizeReference.
#
#   python3 pretokenize_gen.py > pretokenize.json
import json, random, regex

PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama-bpe": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
ALPHABET = ["a", "b", "Z", "s", "t", "S", "T", "l", "L", "r", "e", "v", "m", "d",
            "é", "世", "ʰ", "1", "2", "٣", "²", "ⅷ", " ", " ", " ", "\t", "\n", "\r",
            "\u00a0", "\u3000", "\u2028", "'", "'", ".", "(", "{", "}", "\"", "_", ":", "=",
            "\u200b", "😀", "\x00", "\x7f"]

random.seed(1)
cases = []
for pre, pat in PATTERNS.items():
    rx = regex.compile(pat)
    for _ in range(400):
        s = "".join(random.choice(ALPHABET) for _ in range(random.randint(1, 24)))
        cases.append({"pre": pre, "in": s, "want": rx.findall(s)})
json.dump(cases, __import__("sys").stdout, ensure_ascii=True, indent=0)
