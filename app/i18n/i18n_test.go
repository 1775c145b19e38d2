package i18n_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

// Every string exists in every language and has the same format verbs, so
// a translation can neither be forgotten nor break a Sprintf.
func TestEveryStringTranslatedWithSameVerbs(t *testing.T) {
	en := reflect.ValueOf(*i18n.Get(i18n.EN))
	for _, l := range i18n.Langs {
		v := reflect.ValueOf(*i18n.Get(l))
		for i := 0; i < v.NumField(); i++ {
			name := v.Type().Field(i).Name
			s := v.Field(i).String()
			require.NotEmpty(t, strings.TrimSpace(s), "%s.%s", l, name)
			require.Equal(t, verbs(en.Field(i).String()), verbs(s), "%s.%s", l, name)
		}
	}
	require.NotEqual(t, i18n.Get(i18n.EN).SendButton, i18n.Get(i18n.ZH).SendButton)
}

func verbs(s string) []string {
	var out []string
	for i := 0; i < len(s)-1; i++ {
		if s[i] == '%' {
			out = append(out, s[i:i+2])
			i++
		}
	}
	return out
}

func TestMatch(t *testing.T) {
	require.Equal(t, i18n.ZH, i18n.Match([]string{"zh-CN", "en"}))
	require.Equal(t, i18n.ZH, i18n.Match([]string{"fr", "zh-TW"}))
	require.Equal(t, i18n.EN, i18n.Match([]string{"en-GB", "zh"}))
	require.Equal(t, i18n.EN, i18n.Match([]string{"de"}))
	require.Equal(t, i18n.EN, i18n.Match(nil))
	require.Equal(t, i18n.ZH, i18n.Parse("zh-cn"))
	require.Equal(t, i18n.Lang(""), i18n.Parse("fr"))
}

func TestErrorText(t *testing.T) {
	s := i18n.Get(i18n.ZH)
	require.Equal(t, s.NameTaken, s.ErrorText(shared.CodeNameTaken))
	require.Contains(t, s.ErrorText("weird_code"), "weird_code")
}
