package web

import (
	"cmp"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strconv"

	"github.com/proxyline/proxyline/internal/api"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
)

// option is one <option> of a filter.
type option struct {
	Value, Label string
	Selected     bool
}

func options(current string, values []string, labels map[string]string) []option {
	out := make([]option, 0, len(values))
	for _, v := range values {
		out = append(out, option{Value: v, Label: cmp.Or(labels[v], v), Selected: v == current})
	}
	return out
}

// poolData is the pool page.
type poolData struct {
	Classes, Protocols, Anonymity, Limits []option
	Country, MaxLatency, CheckedWithin    string
	Proxies                               []api.Proxy
	Count                                 int
	Next                                  string // URL of the next page, "" on the last
	After                                 bool   // this page continues a listing
}

func (h *Handler) pool(r *http.Request) (view, error) {
	v := r.URL.Query()
	d := &poolData{
		Classes: options(cmp.Or(v.Get("class"), "alive"), []string{"alive", "all", "refused", "timeout", "bad_response", "auth_required",
			"tls_error", "mismatch", "unreachable", "canceled", "dead"}, map[string]string{"all": "every class"}),
		Protocols: options(v.Get("protocol"), []string{"", "http", "https", "socks4", "socks4a", "socks5"}, map[string]string{"": "any"}),
		Anonymity: options(v.Get("anonymity"), []string{"", "elite", "anonymous", "transparent"}, map[string]string{"": "any"}),
		Limits:    options(cmp.Or(v.Get("limit"), strconv.Itoa(api.DefaultLimit)), []string{"50", "100", "500", "1000"}, nil),
		Country:   v.Get("country"), MaxLatency: v.Get("max_latency"), CheckedWithin: v.Get("checked_within"),
		After: v.Get("cursor") != "",
	}
	out := view{Title: "Pool", Page: "pool", Data: d}
	q, err := api.ParseQuery(v, h.cfg.Now())
	if err != nil {
		return out, err
	}
	page, err := pool.Find(r.Context(), h.cfg.Store.DB(), q.Filter)
	if err != nil {
		return out, err
	}
	for _, f := range page.Proxies {
		d.Proxies = append(d.Proxies, api.ProxyOf(f, false))
	}
	d.Count = len(d.Proxies)
	if c := api.EncodeCursor(page.Next); c != "" {
		next := r.URL.Query()
		next.Set("cursor", c)
		d.Next = "/?" + next.Encode()
	}
	return out, nil
}

// proxyData is a proxy's page.
type proxyData struct {
	Addr    string
	Current []api.Proxy
	History []api.Check
	Chart   template.HTML
}

func (h *Handler) proxy(r *http.Request) (view, error) {
	out := view{Title: "Proxy", Page: "proxy"}
	q, err := api.ParseHistory(r.PathValue("addr"), r.URL.Query(), h.cfg.Now())
	if err != nil {
		return out, err
	}
	out.Title = "Proxy " + q.Addr
	hist, err := api.ReadHistory(r.Context(), h.cfg.Store.DB(), q, false)
	if err != nil {
		return out, err
	}
	if len(hist.Current) == 0 && len(hist.History) == 0 {
		return out, notFound("No proxy " + q.Addr + " in the pool.")
	}
	out.Data = proxyData{Addr: hist.Addr, Current: hist.Current, History: hist.History, Chart: latencyChart(q.Addr, hist.History)}
	return out, nil
}

func (h *Handler) sources(r *http.Request) (view, error) {
	out := view{Title: "Sources", Page: "sources"}
	if len(r.URL.Query()) > 0 {
		return out, &api.ParamError{Param: firstKey(r), Reason: "this page takes no parameters"}
	}
	s, err := api.ReadSources(r.Context(), h.cfg.Store.DB())
	if err != nil {
		return out, err
	}
	out.Data = s
	return out, nil
}

func firstKey(r *http.Request) string {
	keys := make([]string, 0, len(r.URL.Query()))
	for k := range r.URL.Query() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strconv.Quote(keys[0])
}

// queueData is the queue page.
type queueData struct {
	Depth []struct {
		State string
		Jobs  int64
	}
	Total, Unfinished int64
	Kinds             []struct {
		Kind string
		Jobs int64
	}
	Failed []queue.FailedJob
}

func (h *Handler) queue(r *http.Request) (view, error) {
	out := view{Title: "Queue", Page: "queue"}
	st, err := h.cfg.Store.Status(r.Context())
	if err != nil {
		return out, err
	}
	q := api.QueueOf(st)
	d := &queueData{Unfinished: q.Unfinished, Failed: q.Failed}
	for _, s := range q.States {
		d.Depth = append(d.Depth, struct {
			State string
			Jobs  int64
		}{s, q.Jobs[s]})
		d.Total += q.Jobs[s]
	}
	d.Total = max(d.Total, 1) // a meter's max must be positive
	kinds := make([]string, 0, len(q.JobsByKind))
	for k := range q.JobsByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		d.Kinds = append(d.Kinds, struct {
			Kind string
			Jobs int64
		}{k, q.JobsByKind[k]})
	}
	out.Data = d
	return out, nil
}

// workersData is the workers page.
type workersData struct {
	Workers []workerRow
	Alive   int
	Layers  []string
	Columns int
}

type workerRow struct {
	queue.WorkerStatus
	LayerCells []layerCell
}

type layerCell struct {
	Name string
	On   bool
}

func (h *Handler) workers(r *http.Request) (view, error) {
	out := view{Title: "Workers", Page: "workers"}
	st, err := h.cfg.Store.Status(r.Context())
	if err != nil {
		return out, err
	}
	ws := api.WorkersOf(st)
	d := &workersData{Alive: ws.WorkersAlive, Layers: ws.Layers, Columns: 6 + len(ws.Layers)}
	for _, w := range ws.Workers {
		row := workerRow{WorkerStatus: w}
		for _, l := range ws.Layers {
			row.LayerCells = append(row.LayerCells, layerCell{Name: l, On: slices.Contains(w.Layers, l)})
		}
		d.Workers = append(d.Workers, row)
	}
	out.Data = d
	return out, nil
}
