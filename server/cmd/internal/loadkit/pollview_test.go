package loadkit

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

func pollAnswer(texts ...string) []byte {
	pr := shared.PollResponse{Room: "lobby", Epoch: "318351767e0d5380", Next: uint64(len(texts))}
	for i, t := range texts {
		pr.Messages = append(pr.Messages, shared.Message{Seq: uint64(i + 1), Room: "lobby", Kind: shared.KindText,
			Author: "zed", Text: t, SentAt: time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC), ClientMsgID: fmt.Sprint("c", i)})
	}
	b, err := json.Marshal(pr)
	if err != nil {
		panic(err)
	}
	return b
}

// checkAgrees fails when Decode read b and encoding/json read it otherwise.
func checkAgrees(t *testing.T, b []byte) bool {
	var v PollView
	if err := v.Decode(b); err != nil {
		require.ErrorIs(t, err, ErrUnusual)
		return false
	}
	var lp LeanPoll
	require.NoError(t, json.Unmarshal(b, &lp), "Decode read %q, encoding/json refused it", b)
	require.Equal(t, lp.Epoch, string(v.Epoch), "%q", b)
	require.Equal(t, lp.Next, v.Next, "%q", b)
	require.Equal(t, lp.Gap, v.Gap, "%q", b)
	require.Equal(t, lp.Reset, v.Reset, "%q", b)
	require.Len(t, v.Seqs, len(lp.Messages), "%q", b)
	require.Len(t, v.Texts, len(lp.Messages), "%q", b)
	for i, m := range lp.Messages {
		require.Equal(t, m.Seq, v.Seqs[i], "%q", b)
		require.Equal(t, m.Text, string(v.Texts[i]), "%q", b)
	}
	return true
}

func TestPollViewReadsParleysAnswers(t *testing.T) {
	for _, b := range [][]byte{
		pollAnswer(),
		pollAnswer("peers abc 1"),
		pollAnswer("peers abc 1", "peers abc 2", "你好", "emoji 🎉"),
		[]byte(`{"room":"r","epoch":"e","messages":[],"next":7,"gap":true,"reset":false}`),
		[]byte(" {\n\"reset\" : true , \"next\":18446744073709551615, \"x\":[1,-2.5e+3,{\"y\":null}], \"epoch\":\"\"} \n"),
	} {
		require.True(t, checkAgrees(t, b), "%s", b)
	}
	var v PollView
	require.NoError(t, v.Decode(pollAnswer("a", "b")))
	require.Equal(t, []uint64{1, 2}, v.Seqs)
	require.Equal(t, uint64(2), v.Next)
}

// Answers Decode leaves to encoding/json: its reading could differ.
func TestPollViewLeavesTheUnusual(t *testing.T) {
	for _, s := range []string{
		`{"epoch":"a\"b"}`, // an escape in a kept string
		`{"messages":[{"seq":1,"text":"\u00e9"}]}`,
		`{"Epoch":"x"}`, // encoding/json matches keys in any case
		`{"nExt":1}`,
		`{"\u0065poch":"x"}`, // an escaped key
		`{"epoch":null}`,
		`{"next":1.0}`, `{"next":1e2}`, `{"next":-1}`, `{"next":01}`,
		`{"next":18446744073709551616}`, // overflows uint64
		`{"gap":1}`,
		`{"messages":[],"messages":[]}`,
		"{\"epoch\":\"\xff\"}", // invalid UTF-8 in a kept string
		`{"a":[1,2}`, `{"a":1`, `{"a":1} x`, `[]`, ``, `{"a":"\x"}`, `{"a":tru}`,
	} {
		var v PollView
		require.ErrorIs(t, v.Decode([]byte(s)), ErrUnusual, "%s", s)
	}
}

func FuzzPollView(f *testing.F) {
	f.Add(pollAnswer("peers abc 1", "x"))
	f.Add([]byte(`{"epoch":"e","messages":[{"seq":3,"text":"t","k":{"a":[true,null]}}],"next":3,"gap":false,"reset":true}`))
	f.Add([]byte(`{"seq":1,"messages":[{"SEQ":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgrees(t, b)
	})
}

func BenchmarkPollDecode(b *testing.B) {
	body := pollAnswer("peers abc 1")
	b.Run("PollView", func(b *testing.B) {
		var v PollView
		for b.Loop() {
			if err := v.Decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var lp LeanPoll
			if err := json.Unmarshal(body, &lp); err != nil {
				b.Fatal(err)
			}
		}
	})
}
