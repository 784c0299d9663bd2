package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// Address plan: the judge is judgeIP; proxies take consecutive addresses from 127.0.0.3, skipping
// host octets 0 and 255 so that no address looks like a network or broadcast address.
func judgeIP() netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, 2}) }

// firstProxyIndex is the index (see addrAt) of 127.0.0.3, the first proxy address.
const firstProxyIndex = 2

// addrAt returns the i-th usable address of 127.0.0.0/8: 127.0.0.1 is index 0, and each /24
// holds 254 addresses (.1 to .254).
func addrAt(i int) netip.Addr {
	block, host := i/254, i%254+1
	return netip.AddrFrom4([4]byte{127, byte(block >> 8), byte(block), byte(host)})
}

// service is one way of speaking: a listening socket (or, for refused, a bound one) shared by
// every proxy of the kinds it serves.
type service string

const (
	svcHTTP      service = "http"      // HTTP proxies: http, http_auth, transparent, anonymous, slow, liar, alter
	svcHTTPS     service = "https"     // HTTP proxies over TLS
	svcSOCKS4    service = "socks4"    // SOCKS4 only
	svcSOCKS4A   service = "socks4a"   // SOCKS4 and SOCKS4a
	svcSOCKS5    service = "socks5"    // SOCKS5, with or without auth per proxy
	svcBlackhole service = "blackhole" // accept and hold
	svcRefused   service = "refused"   // bound, not listening
)

// entry is one proxy of the farm. Entries are read-only once the lab is started.
type entry struct {
	kind   string
	svc    service
	addr   netip.Addr
	scheme proxy.Scheme // what the proxy speaks
	user   string       // credentials it demands; empty: none
	pass   string
}

// needsAuth reports whether the proxy demands credentials.
func (e *entry) needsAuth() bool { return e.user != "" }

// kindSpec says how a kind is served and judged.
type kindSpec struct {
	svc       service
	scheme    proxy.Scheme
	auth      bool
	class     string
	anonymity string // for live kinds
}

func specOf(kind string, n int) kindSpec {
	switch kind {
	case KindHTTP:
		return kindSpec{svcHTTP, proxy.HTTP, false, ClassAlive, "elite"}
	case KindHTTPAuth:
		return kindSpec{svcHTTP, proxy.HTTP, true, ClassAlive, "elite"}
	case KindHTTPS:
		return kindSpec{svcHTTPS, proxy.HTTPS, false, ClassAlive, "elite"}
	case KindSOCKS4:
		return kindSpec{svcSOCKS4, proxy.SOCKS4, false, ClassAlive, "elite"}
	case KindSOCKS4A:
		return kindSpec{svcSOCKS4A, proxy.SOCKS4A, false, ClassAlive, "elite"}
	case KindSOCKS5:
		return kindSpec{svcSOCKS5, proxy.SOCKS5, false, ClassAlive, "elite"}
	case KindSOCKS5Auth:
		return kindSpec{svcSOCKS5, proxy.SOCKS5, true, ClassAlive, "elite"}
	case KindTransparent:
		return kindSpec{svcHTTP, proxy.HTTP, false, ClassAlive, "transparent"}
	case KindAnonymous:
		return kindSpec{svcHTTP, proxy.HTTP, false, ClassAlive, "anonymous"}
	case KindRefused: // listed alternately as HTTP and SOCKS5, so both check paths meet them
		return kindSpec{svcRefused, alternate(n), false, ClassRefused, ""}
	case KindBlackhole:
		return kindSpec{svcBlackhole, alternate(n), false, ClassTimeout, ""}
	case KindSlow:
		return kindSpec{svcHTTP, proxy.HTTP, false, ClassAlive, "elite"}
	case KindLiar:
		return kindSpec{svcHTTP, proxy.HTTP, false, ClassMismatch, ""}
	case KindAlter:
		return kindSpec{svcHTTP, proxy.HTTP, false, ClassMismatch, ""}
	case KindBare: // alternately HTTP and SOCKS5
		if n%2 == 0 {
			return kindSpec{svcHTTP, proxy.HTTP, false, ClassAlive, "elite"}
		}
		return kindSpec{svcSOCKS5, proxy.SOCKS5, false, ClassAlive, "elite"}
	}
	panic("lab: unknown kind " + kind) // programmer error: counts() and specOf disagree
}

func alternate(n int) proxy.Scheme {
	if n%2 == 0 {
		return proxy.HTTP
	}
	return proxy.SOCKS5
}

// plan assigns an address to every proxy, interleaving the kinds so that any prefix of the
// candidate list holds a mix. ports maps each service to its port.
func (l *Lab) plan(ports map[service]uint16) {
	cfg := l.cfg
	counts := cfg.counts()
	made := make([]int, len(counts))
	l.byAddr = map[[4]byte]*entry{}
	next := firstProxyIndex
	for more := true; more; {
		more = false
		for i, kc := range counts {
			if made[i] >= kc.n {
				continue
			}
			more = true
			n := made[i]
			made[i]++
			spec := specOf(kc.kind, n)
			addr := addrAt(next)
			next++
			e := &entry{kind: kc.kind, svc: spec.svc, addr: addr, scheme: spec.scheme}
			if spec.auth {
				e.user, e.pass = "lab", "pw-"+strconv.Itoa(next)
			}
			l.byAddr[addr.As4()] = e
			cand := proxy.Proxy{Scheme: spec.scheme, Host: addr.String(), Port: ports[spec.svc], User: e.user, Password: e.pass}
			if kc.kind == KindBare {
				cand.Scheme = proxy.Unknown
			}
			t := Truth{Proxy: cand, Kind: kc.kind, Scheme: spec.scheme, Class: spec.class}
			if spec.class == ClassAlive {
				t.Alive, t.Anonymity, t.ExitIP = true, spec.anonymity, addr.String()
			}
			if kc.kind == KindSlow {
				t.Delay = cfg.SlowDelay
			}
			l.candidates = append(l.candidates, cand)
			l.truth = append(l.truth, t)
		}
	}
}

// services lists the services the configured kinds need.
func (c Config) services() []service {
	seen := map[service]bool{}
	var out []service
	for _, kc := range c.counts() {
		for n := 0; n < kc.n && n < 2; n++ { // bare needs two services
			s := specOf(kc.kind, n).svc
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// Counts returns how many proxies of each kind the lab holds, for logs.
func (l *Lab) Counts() map[string]int {
	m := map[string]int{}
	for _, kc := range l.cfg.counts() {
		if kc.n > 0 {
			m[kc.kind] = kc.n
		}
	}
	return m
}

// SlowDelay returns how long the slow proxies wait.
func (l *Lab) SlowDelay() time.Duration { return l.cfg.SlowDelay }

// String describes the lab in one line.
func (l *Lab) String() string {
	return fmt.Sprintf("lab: %d proxies, judge %s and %s", len(l.candidates), l.judgeURL, l.judgeTLS)
}
