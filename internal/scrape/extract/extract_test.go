package extract

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// collect runs an extractor and returns what it emitted, as strings.
func collect(t *testing.T, f func(b []byte, o Options, emit func(proxy.Proxy)) error, in string, o Options) ([]string, error) {
	t.Helper()
	var out []string
	err := f([]byte(in), o, func(p proxy.Proxy) { out = append(out, p.String()) })
	return out, err
}

func TestText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		in   string
		o    Options
		want []string
	}{
		{"bare", "1.2.3.4:8080\n5.6.7.8:3128\r\n", Options{}, []string{"1.2.3.4:8080", "5.6.7.8:3128"}},
		{"hint", "1.2.3.4:8080", Options{Scheme: proxy.SOCKS5}, []string{"socks5://1.2.3.4:8080"}},
		{"hint keeps given scheme", "http://1.2.3.4:8080", Options{Scheme: proxy.SOCKS5}, []string{"http://1.2.3.4:8080"}},
		{"urls", "go socks5://u:p@1.2.3.4:1080, and SOCKS5H://9.9.9.9:1 ok", Options{},
			[]string{"socks5://u:p@1.2.3.4:1080", "socks5://9.9.9.9:1"}},
		{"creds without scheme", "bob:secret@1.2.3.4:80", Options{}, []string{"1.2.3.4:80:bob:secret"}},
		{"colon creds line", "1.2.3.4:80:bob:secret\n", Options{}, []string{"1.2.3.4:80:bob:secret"}},
		{"ipv6", "x [2001:DB8::1]:8080 y socks5://[::1]:1080", Options{}, []string{"[2001:db8::1]:8080", "socks5://[::1]:1080"}},
		{"in prose and markup", `<td>1.2.3.4:80</td> "5.6.7.8:81", (9.9.9.9:82).`, Options{},
			[]string{"1.2.3.4:80", "5.6.7.8:81", "9.9.9.9:82"}},
		{"not candidates", "12:30 1.2.3:80 1.2.3.4.5:80 1.2.3.4:0 1.2.3.4:65536 1.2.3.4:80abc v1.2.3.4:80 1.2.3.4:123456 a@1.2.3.4:1.5 300.1.1.1:80", Options{}, nil},
		{"names refused by default", "proxy.example.com:8080 http://proxy.example.com:3128", Options{}, nil},
		{"names accepted", "proxy.example.com:8080 http://Proxy.Example.com:3128", Options{Hostnames: true},
			[]string{"proxy.example.com:8080", "http://proxy.example.com:3128"}},
		{"unknown scheme", "ftp://1.2.3.4:21", Options{}, nil},
		{"cidr", "10.0.0.0/30:8080 socks5://10.1.0.1/31:1080", Options{},
			[]string{"10.0.0.0:8080", "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "socks5://10.1.0.0:1080", "socks5://10.1.0.1:1080"}},
		{"cidr6", "[2001:db8::/127]:80", Options{}, []string{"[2001:db8::]:80", "[2001:db8::1]:80"}},
		{"end of text", "1.2.3.4:8", Options{}, []string{"1.2.3.4:8"}},
		{"url with path", "http://1.2.3.4:8080/index.html", Options{}, []string{"http://1.2.3.4:8080"}},
	} {
		got, err := collect(t, Text, c.in, c.o)
		if err != nil {
			t.Errorf("%s: error %v", c.name, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: Text(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func TestTextCIDRCap(t *testing.T) {
	t.Parallel()
	got, err := collect(t, Text, "1.2.3.4:80 10.0.0.0/8:8080 10.1.0.0/30:80 10.2.0.0/30:80", Options{CIDRCap: 6})
	var re *RangeError
	if !errors.As(err, &re) || re.Range != "10.0.0.0/8:8080" {
		t.Fatalf("err = %v, want a RangeError naming 10.0.0.0/8:8080", err)
	}
	if !strings.Contains(err.Error(), "10.2.0.0/30:80") {
		t.Errorf("the cap is for the whole body: %v should refuse 10.2.0.0/30 too", err)
	}
	if len(got) != 5 || got[0] != "1.2.3.4:80" {
		t.Errorf("got %q: the candidates outside refused ranges must still count", got)
	}
	if _, err := collect(t, Text, "10.0.0.0/30:80", Options{CIDRCap: -1}); err == nil {
		t.Error("negative cap must refuse every range")
	}
}

func TestHTML(t *testing.T) {
	t.Parallel()
	page := `<html><head><script>var x="6.6.6.6:66";</script><style>a{}</style></head><body>
<table><tr><th>IP Address</th><th>Port</th><th>Code</th><th>Protocol</th></tr>
<tr><td>1.2.3.4</td><td>8080</td><td>US</td><td>SOCKS5</td></tr>
<tr><td>1.2.3.5</td><td>bad</td><td>US</td><td>http</td></tr>
<tr><td>1.2.3.6</td><td>3128</td><td>DE</td><td>HTTP</td></tr></table>
<table><tr><td>9.9.9.9</td><td>99</td><td>socks4</td></tr><tr><td>http://8.8.8.8:88</td></tr></table>
<pre>7.7.7.7:77
7.7.7.8:78</pre><p>also 5.5.5.5:55 &amp; more</p></body></html>`
	got, err := collect(t, HTML, page, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"socks5://1.2.3.4:8080", "http://1.2.3.6:3128", "socks4://9.9.9.9:99", "http://8.8.8.8:88",
		"7.7.7.7:77", "7.7.7.8:78", "5.5.5.5:55"}
	if !slices.Equal(got, want) {
		t.Errorf("HTML = %q, want %q", got, want)
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, in string
		want     []string
	}{
		{"header", "ip,port,protocol,username,password,country\n1.2.3.4,8080,http,,,DE\n5.6.7.8,1080,socks5,bob,secret,FR\n",
			[]string{"http://1.2.3.4:8080", "socks5://bob:secret@5.6.7.8:1080"}},
		{"semicolons", "Host;Port\n1.2.3.4;80\n", []string{"1.2.3.4:80"}},
		{"url column", "url,latency\nsocks4://1.2.3.4:1080,12\n", []string{"socks4://1.2.3.4:1080"}},
		{"no header", "1.2.3.4,80,x\n\"5.6.7.8:81\",y\n", []string{"1.2.3.4:80", "5.6.7.8:81"}},
	} {
		got, err := collect(t, CSV, c.in, Options{})
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: CSV = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	doc := `{"data":{"proxies":[{"ip":"1.2.3.4","port":8080,"protocol":"http"},
	 {"IP":"1.2.3.5","Port":"81","protocols":["socks4","socks5"]},
	 {"proxy":"socks5://u:p@1.2.3.6:1080"}, "9.9.9.9:99", [{"host":"[::1]","port":1}]]},
	 "other":["7.7.7.7:77"]}`
	got, err := collect(t, JSON, doc, Options{JSONPath: "data.proxies"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://1.2.3.4:8080", "socks4://1.2.3.5:81", "socks5://1.2.3.5:81", "socks5://u:p@1.2.3.6:1080",
		"9.9.9.9:99", "[::1]:1"}
	if !slices.Equal(got, want) {
		t.Errorf("JSON path = %q, want %q", got, want)
	}
	got, _ = collect(t, JSON, doc, Options{})
	if len(got) != len(want)+1 {
		t.Errorf("JSON without path = %q: want everything, 7.7.7.7:77 included", got)
	}
	got, err = collect(t, JSON, "{\"ip\":\"1.1.1.1\",\"port\":1}\n{\"ip\":\"2.2.2.2\",\"port\":2}\n", Options{})
	if err != nil || len(got) != 2 {
		t.Errorf("JSON lines = %q, %v", got, err)
	}
	got, err = collect(t, JSON, `[{"ip":"1.1.1.1","port":1}, {"ip":"2.2.2.2",`, Options{})
	if err == nil || !strings.Contains(err.Error(), "malformed JSON at byte") || len(got) != 0 {
		t.Errorf("malformed: %q, %v", got, err)
	}
	if _, err := collect(t, JSON, `{"a":1}`, Options{JSONPath: "data.proxies"}); err == nil || !strings.Contains(err.Error(), "nothing at path") {
		t.Errorf("missing path: %v", err)
	}
}

func TestBody(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, in, ct string
		f, want      Format
		n            int
		err          string
	}{
		{"text", "1.2.3.4:80\n", "text/plain", Auto, TextF, 1, ""},
		{"json by bytes", `[{"ip":"1.2.3.4","port":80}]`, "text/plain", Auto, JSONF, 1, ""},
		{"ipv6 text not json", "[::1]:80\n[::2]:80", "", Auto, TextF, 2, ""},
		{"html by type", "<b>1.2.3.4:80</b>", "text/html; charset=utf-8", Auto, HTMLF, 1, ""},
		{"csv by header", "ip,port\n1.2.3.4,80\n", "", Auto, CSVF, 1, ""},
		{"json type, html body", "<html>1.2.3.4:80</html>", "application/json", Auto, JSONF, 0, "malformed JSON"},
		{"binary", "\x89PNG\r\n\x1a\n\x00\x00\x001.2.3.4:80", "image/png", Auto, Auto, 0, "binary content"},
		{"forced text", `{"ip":"1.2.3.4","port":80} 5.6.7.8:81`, "", TextF, TextF, 1, ""},
	} {
		n := 0
		f, err := Body([]byte(c.in), c.ct, c.f, Options{}, func(proxy.Proxy) { n++ })
		if f != c.want || n != c.n || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: Body = %s, %d candidates, %v; want %s, %d, %q", c.name, f, n, err, c.want, c.n, c.err)
		}
	}
}
