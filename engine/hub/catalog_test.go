package hub

import (
	"slices"
	"strings"
	"testing"
)

// TestCatalog checks each entry is whole and usable: a reference by its
// name parses, its files are GGUFs of the quantization they are listed
// under, and what could not be confirmed is said.
func TestCatalog(t *testing.T) {
	archs := []string{"dream", "llada", "llada-moe", "rnd1"}
	seen := map[string]bool{}
	for _, m := range Catalog {
		t.Run(m.Name, func(t *testing.T) {
			if m.Name != strings.ToLower(m.Name) || seen[m.Name] {
				t.Errorf("name %q: want a lower-case name used once", m.Name)
			}
			seen[m.Name] = true
			if m.Title == "" || m.Infill == "" || validRepo(m.Repo) != nil {
				t.Errorf("title %q, infill %q, repository %q: want all three", m.Title, m.Infill, m.Repo)
			}
			if !slices.Contains(archs, m.Arch) {
				t.Errorf("arch %q, want one of %v", m.Arch, archs)
			}
			if m.Params.Total <= 0 || m.Params.Active <= 0 || m.Params.Active > m.Params.Total {
				t.Errorf("params %+v", m.Params)
			}
			if m.GGUFRepo == "" && (len(m.Files) > 0 || m.Unverified == "") {
				t.Errorf("no GGUF repository: want no files and a word in Unverified")
			}
			if m.GGUFRepo != "" && validRepo(m.GGUFRepo) != nil {
				t.Errorf("GGUF repository %q: %v", m.GGUFRepo, validRepo(m.GGUFRepo))
			}
			if m.Context == 0 || m.License == "" {
				if !strings.Contains(m.Unverified, "context") && !strings.Contains(m.Unverified, "license") {
					t.Errorf("context %d, license %q unknown but Unverified does not say so", m.Context, m.License)
				}
			}
			for q, f := range m.Files {
				if q != strings.ToUpper(q) || !isModelFile(f) || !hasTag(f, q) {
					t.Errorf("file %q under %q: want a GGUF model file tagged with its upper-case quantization", f, q)
				}
				ref, err := ParseRef(m.Name + ":" + strings.ToLower(q))
				if err != nil || ref.File != f || ref.Repo != m.GGUFRepo {
					t.Errorf("ParseRef(%s:%s) = %+v, %v; want file %s", m.Name, q, ref, err, f)
				}
			}
			ref, err := ParseRef(m.Name)
			if err != nil || ref.Name != m.Name || ref.Repo != m.GGUFRepo {
				t.Errorf("ParseRef(%q) = %+v, %v", m.Name, ref, err)
			}
			if got, ok := ref.Model(); !ok || got.Name != m.Name {
				t.Errorf("Ref.Model() = %q, %v", got.Name, ok)
			}
			if m.GGUFRepo != "" {
				if got, ok := LookupRepo(strings.ToUpper(m.GGUFRepo)); !ok || got.Name != m.Name {
					t.Errorf("LookupRepo(%q) = %q, %v", m.GGUFRepo, got.Name, ok)
				}
			}
		})
	}
	if _, ok := Lookup("no-such-model"); ok {
		t.Error("Lookup found a model that is not there")
	}
}
