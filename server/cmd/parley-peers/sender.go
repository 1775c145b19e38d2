package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
)

// The sender runs in a process of its own, this binary started again with
// senderEnv set. In one process with the N clients, the sender's answer
// waited in the Go scheduler's queue behind every client readied before it:
// while the clients were busy reading answers, nothing polled the network
// for the sender, and each back-to-back send took as long as the tool took
// to read one message's N answers (14-19 ms at N = 1,000 for either peer),
// whatever the server did. A sender is another person's browser; in a
// process of its own the kernel wakes it when its answer comes, and the
// figure is the server's again.
const senderEnv = "PARLEY_PEERS_SENDER"

// senderSpec is what the sender process needs to rebuild the peer's send.
type senderSpec struct {
	Peer  string `json:"peer"` // "parley" or "nchan"
	Addr  string `json:"addr"`
	Room  string `json:"room"`
	Token string `json:"token,omitempty"`
	Run   string `json:"run"`
}

func (s senderSpec) peer() (peer, error) {
	switch s.Peer {
	case "parley":
		return &parleyPeer{host: s.Addr, room: s.Room, token: s.Token, run: s.Run}, nil
	case "nchan":
		return &nchanPeer{host: s.Addr, room: s.Room, run: s.Run}, nil
	}
	return nil, fmt.Errorf("no peer %q", s.Peer)
}

// senderCmd asks for message K, or with Burst > 0 for messages K, K+1, …
// back to back, each sent when the previous one was answered, until Burst
// were sent or For has passed.
type senderCmd struct {
	K     int           `json:"k"`
	Burst int           `json:"burst,omitempty"`
	For   time.Duration `json:"for,omitempty"`
}

// senderReply says when the first send began and how long each took.
type senderReply struct {
	Began  time.Time `json:"began"`
	TookMS []float64 `json:"took_ms"`
	Err    string    `json:"err,omitempty"`
}

// runSender is the sender process: a spec, then commands, one JSON value
// each, on r; a reply to each on w. It ends when r does.
func runSender(ctx context.Context, r io.Reader, w io.Writer) error {
	dec, enc := json.NewDecoder(bufio.NewReader(r)), json.NewEncoder(w)
	var spec senderSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("sender spec: %w", err)
	}
	p, err := spec.peer()
	if err != nil {
		return err
	}
	conn, err := loadkit.DialLoopback(ctx, spec.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var cmd senderCmd
		if err := dec.Decode(&cmd); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("sender command: %w", err)
		}
		var rep senderReply
		n := max(cmd.Burst, 1)
		for k := cmd.K; k < cmd.K+n; k++ {
			if k > cmd.K && time.Since(rep.Began) >= cmd.For {
				break
			}
			t0, err := sendOne(ctx, conn, p, k)
			if k == cmd.K {
				rep.Began = t0
			}
			if err != nil {
				rep.Err = err.Error()
				break
			}
			rep.TookMS = append(rep.TookMS, float64(time.Since(t0).Microseconds())/1e3)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
}

// sendOne publishes message k and checks that the server took it.
func sendOne(ctx context.Context, conn *loadkit.Conn, p peer, k int) (time.Time, error) {
	req := p.sendRequest(nil, k)
	var resp loadkit.Response
	t0 := time.Now()
	if err := conn.Do(ctx, req, &resp); err != nil {
		return t0, fmt.Errorf("%s: send %d: %w", p.name(), k, err)
	}
	if !p.sendOK(&resp) {
		return t0, fmt.Errorf("%s: send %d answered %d: %.200s", p.name(), k, resp.Status, resp.Body)
	}
	return t0, nil
}

// senderProc is the parent's handle on a sender process.
type senderProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	enc *json.Encoder
	dec *json.Decoder
}

// startSender starts this binary again as a sender for spec.
func startSender(ctx context.Context, spec senderSpec) (*senderProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), senderEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the sender: %w", err)
	}
	s := &senderProc{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out)}
	if err := s.enc.Encode(spec); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *senderProc) do(cmd senderCmd) (senderReply, error) {
	var rep senderReply
	if err := s.enc.Encode(cmd); err != nil {
		return rep, fmt.Errorf("sender: %w", err)
	}
	if err := s.dec.Decode(&rep); err != nil {
		return rep, fmt.Errorf("sender: %w", err)
	}
	if rep.Err != "" {
		return rep, errors.New(rep.Err)
	}
	return rep, nil
}

// send publishes message k and returns when its send began.
func (s *senderProc) send(k int) (time.Time, error) {
	rep, err := s.do(senderCmd{K: k})
	return rep.Began, err
}

// burst sends messages first, first+1, … back to back, at most n or for d,
// and returns when the first send began and how long each took, in ms.
func (s *senderProc) burst(first, n int, d time.Duration) (time.Time, []float64, error) {
	rep, err := s.do(senderCmd{K: first, Burst: n, For: d})
	return rep.Began, rep.TookMS, err
}

// close ends the sender (its input ends) and waits for it.
func (s *senderProc) close() error {
	s.in.Close()
	return s.cmd.Wait()
}
