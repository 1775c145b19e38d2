package httpapi

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/parley-chat/parley/shared"
)

// parsePollQuery decodes the query of GET /api/rooms/{room}/messages. Polls
// are the hot path, so this reads the raw query once with no reflection and
// no map, where the schema decoder the other endpoints use cost a tenth of
// the server's CPU. FuzzPollQueryAgreesWithSchema holds it to the same
// answers as that decoder, quirks included: keys match case-insensitively
// and pairs that net/url cannot parse are ignored. A field given twice
// ("after=1&after=9", "wait=1&WAIT=60") is refused with invalid_param by
// both, since endpoints (and proxies) that take the first and those that
// take the last would otherwise read different requests from one URL.
func parsePollQuery(raw string) (shared.PollRequest, error) {
	var req shared.PollRequest
	var after, before, wait, limit string
	var hasAfter, hasBefore, hasEpoch, hasWait, hasLimit bool
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, ok := unescape(k)
		if !ok {
			continue
		}
		if v, ok = unescape(v); !ok {
			continue
		}
		var seen *bool
		switch {
		case strings.EqualFold(k, "after"):
			after, seen = v, &hasAfter
		case strings.EqualFold(k, "before"):
			before, seen = v, &hasBefore
		case strings.EqualFold(k, "epoch"):
			req.Epoch, seen = v, &hasEpoch
		case strings.EqualFold(k, "wait"):
			wait, seen = v, &hasWait
		case strings.EqualFold(k, "limit"):
			limit, seen = v, &hasLimit
		default:
			continue
		}
		if *seen {
			return shared.PollRequest{}, duplicated(k)
		}
		*seen = true
	}
	var err error
	if hasAfter {
		if req.After, err = parseUint("after", after); err != nil {
			return shared.PollRequest{}, err
		}
	}
	if hasBefore {
		if req.Before, err = parseUint("before", before); err != nil {
			return shared.PollRequest{}, err
		}
	}
	if hasLimit {
		if req.Limit, err = parseInt("limit", limit); err != nil {
			return shared.PollRequest{}, err
		}
	}
	if hasWait {
		if req.Wait, err = parseInt("wait", wait); err != nil {
			return shared.PollRequest{}, err
		}
	}
	return req, nil
}

func duplicated(field string) error {
	return shared.Errorf(shared.CodeInvalidParam, "%s is given more than once", strings.ToLower(field))
}

// unescape is url.QueryUnescape with a fast path for the common case.
func unescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

func parseUint(field, v string) (*uint64, error) {
	if v == "" {
		return new(uint64), nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, shared.Errorf(shared.CodeInvalidParam, "%s: not a valid number", field)
	}
	return &n, nil
}

func parseInt(field, v string) (*int, error) {
	if v == "" {
		return new(int), nil
	}
	n, err := strconv.ParseInt(v, 10, 0)
	if err != nil {
		return nil, shared.Errorf(shared.CodeInvalidParam, "%s: not a valid number", field)
	}
	i := int(n)
	return &i, nil
}
