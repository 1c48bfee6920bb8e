package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// GPT-2's byte-level BPE stores every token as text in which each byte is
// one printable rune: the printable Latin-1 bytes stand for themselves and
// the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) are shifted
// to U+0100 and up, in byte order. So "Ġ" (U+0120) is the space byte and
// "Ċ" (U+010A) is '\n'.

// byteRune maps a byte to the rune that stands for it in token text.
var byteRune [256]rune

// runeByte maps a rune below runeByteLimit back to its byte; -1 where the
// rune stands for no byte.
var runeByte [runeByteLimit]int16

// runeByteLimit bounds the runes that stand for bytes (the last is U+0143).
const runeByteLimit = 0x144

func init() {
	for i := range runeByte {
		runeByte[i] = -1
	}
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteRune[b] = rune(b)
		} else {
			byteRune[b] = rune(256 + n)
			n++
		}
		runeByte[byteRune[b]] = int16(b)
	}
}

// EncodeBytes returns the token text that stands for the raw bytes b in a
// byte-level vocabulary ("Ġ" for a space): the inverse of DecodeBytes.
func EncodeBytes(b string) string {
	var sb strings.Builder
	sb.Grow(len(b) * 2)
	for i := 0; i < len(b); i++ {
		sb.WriteRune(byteRune[b[i]])
	}
	return sb.String()
}

// DecodeBytes returns the raw bytes that a byte-level token text stands
// for. A rune that stands for no byte (or an invalid UTF-8 byte) is kept as
// its own UTF-8 bytes, so that decoding never fails.
func DecodeBytes(text string) string {
	var sb strings.Builder
	sb.Grow(len(text))
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if r < runeByteLimit && runeByte[r] >= 0 {
			sb.WriteByte(byte(runeByte[r]))
		} else {
			sb.WriteString(text[i : i+n])
		}
		i += n
	}
	return sb.String()
}
