package ui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

// Every user string (names and texts) is in a bidi isolate: a <bdi>, or a
// paragraph of its own with dir=auto. A name with a right-to-left
// override, as stored before the server refused them, stays inside it.
func TestNamesAndTextsAreBidiIsolated(t *testing.T) {
	const rlo = "\u202eecila"
	es := entries(1, 3, rlo)
	es[0].Kind = shared.KindJoin
	es[2].Text = "\u202etxet"
	for _, s := range []*struct {
		name string
		html string
	}{
		{"log", render(t, &messageLog{Str: en, Room: "lobby", Self: "bob", Entries: es,
			Outbox: []chat.Item{{ID: "q1", Text: "\u202equeued", State: chat.ItemPending}}})},
		{"log zh", render(t, &messageLog{Str: zh, Room: "lobby", Self: rlo, Entries: es})},
		{"members", render(t, &memberList{Str: en, Self: "bob", Members: []shared.Member{{Name: rlo}, {Name: "bob"}}})},
	} {
		// Each user string's element is its tag's last part before it.
		for _, user := range []string{rlo, "\u202etxet", "\u202equeued"} {
			for i := strings.Index(s.html, user); i >= 0; {
				open := s.html[strings.LastIndex(s.html[:i], "<"):i]
				isolated := strings.HasPrefix(open, "<bdi") || strings.HasPrefix(open, "<p") && strings.Contains(open, `dir="auto"`)
				require.True(t, isolated, "%s: %q is in %s", s.name, user, open)
				j := strings.Index(s.html[i+1:], user)
				if j < 0 {
					break
				}
				i += 1 + j
			}
		}
	}
	// The join line keeps its words around the isolated name.
	html := render(t, &messageLog{Str: en, Room: "lobby", Entries: es[:1]})
	_, after, _ := strings.Cut(en.Joined, "%s")
	require.Regexp(t, `<bdi class="name">`+rlo+`</bdi>\s*`+strings.TrimSpace(after)+`\s*</span>`, html)
}

// A textbook post is marked as one, in both languages, and is never the
// user's own even under the user's name.
func TestTextbookPostMarkedAndNeverOwn(t *testing.T) {
	es := entries(1, 2, "bob")
	es[0].Via, es[0].ClientMsgID = shared.ViaTextbook, ""
	es[1].ClientMsgID = "c2"
	for _, s := range []struct {
		str  string
		html string
	}{
		{en.Textbook, render(t, &messageLog{Str: en, Room: "lobby", Self: "bob", Entries: es})},
		{zh.Textbook, render(t, &messageLog{Str: zh, Room: "lobby", Self: "bob", Entries: es})},
	} {
		tb := attrs(t, s.html, `data-seq="1"`)
		require.Equal(t, "msg textbook", tb["class"], "the textbook post under the user's name is not own")
		require.Empty(t, tb["data-state"])
		require.Equal(t, 1, strings.Count(s.html, `data-testid="textbook"`))
		require.Contains(t, s.html, fmt.Sprintf(`>%s</span>`, s.str))
		require.Equal(t, "msg own", attrs(t, s.html, `data-seq="2"`)["class"], "the user's own post still is")
	}
	require.NotEqual(t, en.Textbook, zh.Textbook)
}
