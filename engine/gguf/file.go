package gguf

import "math"

// Lookup returns the value of the metadata key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.keys[key]
	if !ok {
		return Value{}, false
	}
	return f.Metadata[i].Value, true
}

// String returns the string value of key.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Lookup(key)
	return v.AsString()
}

// Uint returns the value of key if it is an integer of any type and not
// negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Lookup(key)
	return v.AsUint()
}

// Int returns the value of key if it is an integer of any type that fits in
// an int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Lookup(key)
	return v.AsInt()
}

// Float returns the value of key if it is a float32 or float64, or an
// integer (converted).
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Lookup(key)
	return v.AsFloat()
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Lookup(key)
	return v.AsBool()
}

// Strings returns the value of key if it is an array of strings. The slice
// is shared with the File; do not modify it.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Lookup(key)
	return v.AsStrings()
}

// Int32s returns the value of key if it is an array of any integer type
// whose elements all fit in an int32.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Lookup(key)
	return v.AsInt32s()
}

// Float32s returns the value of key if it is an array of float32 (or of
// float64, converted).
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Lookup(key)
	return v.AsFloat32s()
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensors[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// ParameterCount returns the number of elements of all tensors together.
func (f *File) ParameterCount() uint64 {
	var n uint64
	for i := range f.Tensors {
		n += f.Tensors[i].Elements()
	}
	return n
}

// DataSize returns the bytes all tensors' data take together (without the
// padding between them).
func (f *File) DataSize() int64 {
	var n int64
	for i := range f.Tensors {
		n += int64(f.Tensors[i].Size())
	}
	return n
}

// Close releases the memory mapping of a File from Open; the tensors' Data
// is invalid (set to nil) afterwards. For a File from Parse it does
// nothing. Calling Close more than once is harmless.
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	for i := range f.Tensors {
		f.Tensors[i].Data = nil
	}
	m := f.mapping
	f.mapping = nil
	return unmap(m)
}

// maxFileSize is the largest file Open maps.
const maxFileSize = math.MaxInt
