package proctab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// listeningDiag asks the kernel for the LISTEN tcp sockets of one address family through
// NETLINK_SOCK_DIAG, with the state filter applied in the kernel. On machines with many
// connections /proc/net/tcp has 100 000+ rows and takes about a second to read (HYGIENE trap
// 21); the filtered dump returns only the listeners. Hand-written because it is one fixed
// 72-byte request and x/sys/unix has the constants but not the inet_diag structs; a netlink
// library would be a dependency for a single call.
func listeningDiag(family uint8) ([]Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	defer unix.Close(fd)
	// struct nlmsghdr (16) + struct inet_diag_req_v2 (56).
	req := make([]byte, 72)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1) // sequence
	req[16] = family
	req[17] = unix.IPPROTO_TCP
	ne.PutUint32(req[20:], 1<<tcpListen) // idiag_states: LISTEN only
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send sock_diag request: %w", err)
	}
	var out []Socket
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read sock_diag reply: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("parse sock_diag reply: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
					}
				}
				return nil, errors.New("sock_diag: error reply")
			}
			if s, ok := parseDiagMsg(m.Data); ok {
				out = append(out, s)
			}
		}
	}
}

// parseDiagMsg decodes a struct inet_diag_msg (72 bytes): family, state, timer, retrans, then
// inet_diag_sockid {sport, dport (big-endian), src[16], dst[16], if, cookie[2]}, then expires,
// rqueue, wqueue, uid, inode.
func parseDiagMsg(b []byte) (Socket, bool) {
	if len(b) < 72 || b[1] != tcpListen {
		return Socket{}, false
	}
	port := int(binary.BigEndian.Uint16(b[4:]))
	var addr netip.Addr
	switch b[0] {
	case unix.AF_INET:
		addr = netip.AddrFrom4([4]byte(b[8:12]))
	case unix.AF_INET6:
		addr = netip.AddrFrom16([16]byte(b[8:24]))
	default:
		return Socket{}, false
	}
	inode := uint64(binary.NativeEndian.Uint32(b[68:]))
	return Socket{Addr: addr.String(), Port: port, Inode: inode}, true
}
