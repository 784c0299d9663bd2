package history

import (
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestAnalyze(t *testing.T) {
	t.Parallel()
	sub, err := ReadIDs(strings.NewReader("# ids\na\nb\n\nc\nd\nd\n"), "ids.txt")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ReadJSONL(strings.NewReader(`{"id":"a","output":"A"}
{"id":"b","output":"B"}
{"id":"b","output":"B"}
{"id":"x","output":"X"}
{"id":"d","output":"bad"}
`), "out.jsonl", "", "")
	if err != nil {
		t.Fatal(err)
	}
	sums, err := ReadChecksums(strings.NewReader("a "+Checksum("A")+"\nd "+Checksum("D")+"\n"), "sums")
	if err != nil {
		t.Fatal(err)
	}
	r := Analyze(IDs(sub), res, sums)
	if r.Submitted != 4 || r.Completed != 3 || r.Results != 5 {
		t.Errorf("counts: %+v", r)
	}
	if strings.Join(r.Lost, ",") != "c" {
		t.Errorf("lost = %v, want [c]", r.Lost)
	}
	if len(r.Duplicated) != 1 || r.Duplicated[0].ID != "b" || r.Duplicated[0].Count != 2 || r.Duplicated[0].Where[1] != "out.jsonl:3" {
		t.Errorf("duplicated = %+v", r.Duplicated)
	}
	if strings.Join(r.Unexpected, ",") != "x" {
		t.Errorf("unexpected = %v", r.Unexpected)
	}
	if len(r.Corrupted) != 1 || r.Corrupted[0].ID != "d" {
		t.Errorf("corrupted = %+v", r.Corrupted)
	}
	if strings.Join(r.DuplicateSubmissions, ",") != "d" {
		t.Errorf("duplicate submissions = %v", r.DuplicateSubmissions)
	}
	if f := r.Fraction(len(r.Lost)); f != 0.25 {
		t.Errorf("lost fraction = %v", f)
	}
	if !strings.Contains(r.Summary(), "lost 1 (25.0%)") {
		t.Errorf("summary = %q", r.Summary())
	}
}

func TestAnalyzeClean(t *testing.T) {
	t.Parallel()
	r := Analyze([]string{"1", "2"}, []Record{{ID: "1"}, {ID: "2"}}, nil)
	if len(r.Lost)+len(r.Duplicated)+len(r.Unexpected)+len(r.Corrupted) != 0 {
		t.Fatalf("clean history reported problems: %+v", r)
	}
}

func TestReadJSONL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, idf, outf, wantErr, wantID, wantOut string
	}{
		{"number id", `{"id": 12, "output": {"ok": true}}`, "", "", "", "12", `{"ok":true}`},
		{"nested", `{"job": {"args": {"id": "z"}}, "res": "r"}`, "job.args.id", "res", "", "z", "r"},
		{"array index", `{"ids": ["q"]}`, "ids.0", "", "", "q", ""},
		{"missing id", `{"x": 1}`, "", "", "x.jsonl:1: no field \"id\"", "", ""},
		{"not json", `{"id":`, "", "", "x.jsonl:1: not JSON", "", ""},
		{"two values", `{"id":"a"} {"id":"b"}`, "", "", "more than one JSON value", "", ""},
		{"object id", `{"id": {}}`, "", "", "is not a string or number", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			recs, err := ReadJSONL(strings.NewReader(c.in), "x.jsonl", c.idf, c.outf)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || len(recs) != 1 || recs[0].ID != c.wantID || recs[0].Output != c.wantOut {
				t.Fatalf("got %+v, %v", recs, err)
			}
		})
	}
}

func TestReadChecksumsErrors(t *testing.T) {
	t.Parallel()
	if _, err := ReadChecksums(strings.NewReader("a b c\n"), "s"); err == nil || !strings.Contains(err.Error(), "s:1:") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ReadChecksums(strings.NewReader("a 1\na 2\n"), "s"); err == nil || !strings.Contains(err.Error(), "s:2:") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"id":"a","output":"x"}`+"\n"+`{"id":1}`), "id", "output")
	f.Add([]byte(`{"a":{"b":[{"c":"z"}]}}`), "a.b.0.c", "")
	f.Add([]byte("\n\n[1,2]\n"), "0", "1")
	f.Fuzz(func(t *testing.T, data []byte, idf, outf string) {
		recs, err := ReadJSONL(strings.NewReader(string(data)), "f", idf, outf)
		for _, r := range recs {
			if r.ID == "" {
				t.Fatalf("empty id accepted (err %v)", err)
			}
		}
		_ = Analyze(IDs(recs), recs, nil)
	})
}

func FuzzReadIDsAndChecksums(f *testing.F) {
	f.Add([]byte("a\n#c\n b \n"))
	f.Add([]byte("a 00ff\nb 11\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, _ := ReadIDs(strings.NewReader(string(data)), "f")
		for _, r := range ids {
			if r.ID == "" || strings.TrimSpace(r.ID) != r.ID {
				t.Fatalf("bad id %q", r.ID)
			}
		}
		sums, err := ReadChecksums(strings.NewReader(string(data)), "f")
		if err == nil {
			r := Analyze(IDs(ids), ids, sums)
			if r.Completed != r.Submitted {
				t.Fatalf("every id has itself as result: %+v", r)
			}
		}
	})
}
