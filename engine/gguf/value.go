package gguf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ValueType is the type of a metadata value, numbered as GGUF numbers them.
type ValueType uint32

// The GGUF metadata value types.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12

	// valueInvalid marks a Value that MakeValue could not build; Write
	// rejects it with the reason it holds.
	valueInvalid ValueType = math.MaxUint32
)

// maxNesting bounds how deeply arrays may nest in a value (an array of
// arrays of ... of scalars), so a hostile file cannot recurse without end.
const maxNesting = 8

var valueTypeNames = [...]string{
	ValueUint8: "uint8", ValueInt8: "int8", ValueUint16: "uint16", ValueInt16: "int16",
	ValueUint32: "uint32", ValueInt32: "int32", ValueFloat32: "float32", ValueBool: "bool",
	ValueString: "string", ValueArray: "array", ValueUint64: "uint64", ValueInt64: "int64",
	ValueFloat64: "float64",
}

// String returns the type's name ("uint32", "array"), or "valuetype(N)" for
// a number GGUF does not define.
func (t ValueType) String() string {
	if t.valid() {
		return valueTypeNames[t]
	}
	if t == valueInvalid {
		return "invalid"
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

func (t ValueType) valid() bool { return t <= ValueFloat64 }

// minSize is the fewest bytes one value of type t takes in a file: its
// fixed size, or the length prefix of a string, or the element type and
// count of an array. Parse uses it to reject counts the rest of the file
// cannot hold before allocating for them.
func (t ValueType) minSize() int {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64, ValueString:
		return 8
	case ValueArray:
		return 12
	}
	return 0
}

// Value is one GGUF metadata value: a scalar, a string, or an array that
// keeps its element type (arrays of arrays included). The zero Value is not
// valid; build values with MakeValue or Val, or read them from a File.
type Value struct {
	// Type is the value's GGUF type.
	Type ValueType

	elem ValueType // element type, for arrays
	// v holds the Go value: uint8 ... float64, bool or string for scalars;
	// []uint8 ... []float64, []bool or []string for arrays of those; []Value
	// (each of Type ValueArray) for arrays of arrays; an error for
	// valueInvalid.
	v any
}

// MakeValue returns the GGUF value for a Go value: uint8, int8, uint16,
// int16, uint32, int32, uint64, int64, float32, float64, bool or string,
// a slice of one of those (an array of that element type), a []Value whose
// elements are all arrays (an array of arrays), or a Value (returned as is).
// Other Go types, int and uint among them (GGUF has no platform-sized
// integers), are an error.
func MakeValue(x any) (Value, error) {
	v, err := makeValue(x)
	if err != nil {
		return Value{}, within(err, "gguf")
	}
	return v, nil
}

// makeValue is MakeValue with errors not prefixed by the package name.
func makeValue(x any) (Value, error) {
	switch x := x.(type) {
	case Value:
		return x, x.check(0)
	case uint8:
		return Value{Type: ValueUint8, v: x}, nil
	case int8:
		return Value{Type: ValueInt8, v: x}, nil
	case uint16:
		return Value{Type: ValueUint16, v: x}, nil
	case int16:
		return Value{Type: ValueInt16, v: x}, nil
	case uint32:
		return Value{Type: ValueUint32, v: x}, nil
	case int32:
		return Value{Type: ValueInt32, v: x}, nil
	case uint64:
		return Value{Type: ValueUint64, v: x}, nil
	case int64:
		return Value{Type: ValueInt64, v: x}, nil
	case float32:
		return Value{Type: ValueFloat32, v: x}, nil
	case float64:
		return Value{Type: ValueFloat64, v: x}, nil
	case bool:
		return Value{Type: ValueBool, v: x}, nil
	case string:
		return Value{Type: ValueString, v: x}, nil
	case []uint8:
		return array(ValueUint8, x), nil
	case []int8:
		return array(ValueInt8, x), nil
	case []uint16:
		return array(ValueUint16, x), nil
	case []int16:
		return array(ValueInt16, x), nil
	case []uint32:
		return array(ValueUint32, x), nil
	case []int32:
		return array(ValueInt32, x), nil
	case []uint64:
		return array(ValueUint64, x), nil
	case []int64:
		return array(ValueInt64, x), nil
	case []float32:
		return array(ValueFloat32, x), nil
	case []float64:
		return array(ValueFloat64, x), nil
	case []bool:
		return array(ValueBool, x), nil
	case []string:
		return array(ValueString, x), nil
	case []Value:
		v := array(ValueArray, x)
		return v, v.check(0)
	}
	return Value{}, errorf(ErrInvalid, "no GGUF value type for Go type %T", x)
}

// Val is MakeValue for values known to be representable, such as constants
// written in a program. For an unsupported Go type it returns an invalid
// Value that Write rejects with the reason, instead of panicking.
func Val(x any) Value {
	v, err := makeValue(x)
	if err != nil {
		return Value{Type: valueInvalid, v: err}
	}
	return v
}

func array(elem ValueType, s any) Value { return Value{Type: ValueArray, elem: elem, v: s} }

// check reports whether v is a well-formed value: its Go value matches its
// type and arrays nest at most maxNesting deep. level is the number of
// arrays enclosing v.
func (v Value) check(level int) error {
	if v.Type == valueInvalid {
		if err, ok := v.v.(error); ok {
			return err
		}
	}
	if v.Type == ValueArray {
		if level >= maxNesting {
			return errorf(ErrInvalid, "arrays nested more than %d deep", maxNesting)
		}
		if v.elem == ValueArray {
			elems, ok := v.v.([]Value)
			if !ok {
				return errorf(ErrInvalid, "array of arrays holds %T", v.v)
			}
			for i, e := range elems {
				if e.Type != ValueArray {
					return errorf(ErrInvalid, "array of arrays: element %d is %s", i, e.Type)
				}
				if err := e.check(level + 1); err != nil {
					return within(err, "element %d", i)
				}
			}
			return nil
		}
	}
	if !v.Type.valid() || goType(v.Type, v.elem) != fmt.Sprintf("%T", v.v) {
		return errorf(ErrInvalid, "value of type %s holds Go %T", v.typeName(), v.v)
	}
	return nil
}

// goType is the Go type name a Value of type t (element type elem) holds.
func goType(t, elem ValueType) string {
	if t == ValueArray {
		if !elem.valid() || elem == ValueArray {
			return ""
		}
		return "[]" + goType(elem, 0)
	}
	return t.String()
}

func (v Value) typeName() string {
	if v.Type == ValueArray {
		return "array of " + v.elem.String()
	}
	return v.Type.String()
}

// Elem returns the element type of an array value (ValueArray for an array
// of arrays); it is meaningless for other values.
func (v Value) Elem() ValueType { return v.elem }

// Len returns the number of elements of an array value, or 0.
func (v Value) Len() int {
	switch s := v.v.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float32:
		return len(s)
	case []float64:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []Value:
		return len(s)
	}
	return 0
}

// Any returns the Go value v holds: uint8 ... float64, bool or string for a
// scalar; a slice of those for an array; []Value for an array of arrays.
// Slices are shared with v; do not modify them.
func (v Value) Any() any { return v.v }

// AsUint returns an integer value that is not negative, of any integer type.
func (v Value) AsUint() (uint64, bool) {
	switch x := v.v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	}
	if i, ok := v.signed(); ok && i >= 0 {
		return uint64(i), true
	}
	return 0, false
}

// AsInt returns an integer value of any integer type that fits in an int64.
func (v Value) AsInt() (int64, bool) {
	if i, ok := v.signed(); ok {
		return i, true
	}
	switch x := v.v.(type) {
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

func (v Value) signed() (int64, bool) {
	switch x := v.v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// AsFloat returns a float32 or float64 value, or an integer value converted
// to float64.
func (v Value) AsFloat() (float64, bool) {
	switch x := v.v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case uint64:
		return float64(x), true
	}
	if i, ok := v.AsInt(); ok {
		return float64(i), true
	}
	return 0, false
}

// AsBool returns a bool value.
func (v Value) AsBool() (bool, bool) {
	b, ok := v.v.(bool)
	return b, ok
}

// AsString returns a string value.
func (v Value) AsString() (string, bool) {
	s, ok := v.v.(string)
	return s, ok
}

// AsStrings returns an array of strings. The slice is shared with v; do not
// modify it.
func (v Value) AsStrings() ([]string, bool) {
	s, ok := v.v.([]string)
	return s, ok
}

// AsFloat32s returns an array of float32, or of float64 converted to
// float32. A float32 slice is shared with v; do not modify it.
func (v Value) AsFloat32s() ([]float32, bool) {
	switch s := v.v.(type) {
	case []float32:
		return s, true
	case []float64:
		out := make([]float32, len(s))
		for i, x := range s {
			out[i] = float32(x)
		}
		return out, true
	}
	return nil, false
}

// AsInt32s returns an array of any integer type whose elements all fit in
// an int32, converted to int32. An int32 slice is shared with v; do not
// modify it.
func (v Value) AsInt32s() ([]int32, bool) {
	switch s := v.v.(type) {
	case []int32:
		return s, true
	case []uint8:
		return convertInts(s)
	case []int8:
		return convertInts(s)
	case []uint16:
		return convertInts(s)
	case []int16:
		return convertInts(s)
	case []uint32:
		return convertInts(s)
	case []uint64:
		return convertInts(s)
	case []int64:
		return convertInts(s)
	}
	return nil, false
}

func convertInts[T uint8 | int8 | uint16 | int16 | uint32 | uint64 | int64](s []T) ([]int32, bool) {
	out := make([]int32, len(s))
	for i, x := range s {
		if x < 0 && int64(x) < math.MinInt32 || x > 0 && uint64(x) > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

// Equal reports whether v and o have the same type and contents; floats
// compare by their bits, so a NaN equals itself.
func (v Value) Equal(o Value) bool {
	if v.Type != o.Type || v.Type == ValueArray && v.elem != o.elem {
		return false
	}
	switch a := v.v.(type) {
	case float32:
		b, ok := o.v.(float32)
		return ok && math.Float32bits(a) == math.Float32bits(b)
	case float64:
		b, ok := o.v.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case []uint8:
		return sliceEqual(a, o.v)
	case []int8:
		return sliceEqual(a, o.v)
	case []uint16:
		return sliceEqual(a, o.v)
	case []int16:
		return sliceEqual(a, o.v)
	case []uint32:
		return sliceEqual(a, o.v)
	case []int32:
		return sliceEqual(a, o.v)
	case []uint64:
		return sliceEqual(a, o.v)
	case []int64:
		return sliceEqual(a, o.v)
	case []bool:
		return sliceEqual(a, o.v)
	case []string:
		return sliceEqual(a, o.v)
	case []float32:
		b, ok := o.v.([]float32)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				return false
			}
		}
		return true
	case []float64:
		b, ok := o.v.([]float64)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				return false
			}
		}
		return true
	case []Value:
		b, ok := o.v.([]Value)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !a[i].Equal(b[i]) {
				return false
			}
		}
		return true
	case uint8, int8, uint16, int16, uint32, int32, uint64, int64, bool, string:
		return v.v == o.v
	}
	return false
}

func sliceEqual[T comparable](a []T, o any) bool {
	b, ok := o.([]T)
	if !ok || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Limits of Value.String, which is for people reading a model's metadata.
const (
	maxShownElems  = 8  // array elements shown before "... N more"
	maxShownString = 80 // string bytes shown before "...(N bytes)"
)

// String formats v for people: numbers as Go prints them, strings quoted and
// cut after 80 bytes, arrays as [a b c ... 151928 more] after 8 elements.
func (v Value) String() string {
	var b strings.Builder
	v.format(&b)
	return b.String()
}

func (v Value) format(b *strings.Builder) {
	switch x := v.v.(type) {
	case uint8:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint16:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint32:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case int8, int16, int32, int64:
		i, _ := v.signed()
		b.WriteString(strconv.FormatInt(i, 10))
	case float32:
		b.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		formatString(b, x)
	case error:
		b.WriteString("invalid: ")
		b.WriteString(x.Error())
	case nil:
		b.WriteString("<nil>")
	default:
		n := v.Len()
		b.WriteByte('[')
		for i := range min(n, maxShownElems) {
			if i > 0 {
				b.WriteByte(' ')
			}
			v.index(i).format(b)
		}
		if n > maxShownElems {
			fmt.Fprintf(b, " ... %d more", n-maxShownElems)
		}
		b.WriteByte(']')
	}
}

// index returns element i of an array value as a Value.
func (v Value) index(i int) Value {
	var x any
	switch s := v.v.(type) {
	case []uint8:
		x = s[i]
	case []int8:
		x = s[i]
	case []uint16:
		x = s[i]
	case []int16:
		x = s[i]
	case []uint32:
		x = s[i]
	case []int32:
		x = s[i]
	case []uint64:
		x = s[i]
	case []int64:
		x = s[i]
	case []float32:
		x = s[i]
	case []float64:
		x = s[i]
	case []bool:
		x = s[i]
	case []string:
		x = s[i]
	case []Value:
		return s[i]
	}
	return Value{Type: v.elem, v: x}
}

func formatString(b *strings.Builder, s string) {
	if len(s) <= maxShownString {
		b.WriteString(strconv.Quote(s))
		return
	}
	cut := maxShownString
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	b.WriteString(strconv.Quote(s[:cut]))
	fmt.Fprintf(b, "...(%d bytes)", len(s))
}
