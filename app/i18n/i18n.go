// Package i18n holds every string the Parley UI shows, in English and
// Simplified Chinese, so no text is hard-coded in components and a missing
// translation is a test failure rather than a blank button.
package i18n

import (
	"fmt"
	"strings"

	"github.com/parley-chat/parley/shared"
)

// Lang is a UI language, as a BCP 47 tag usable in <html lang>.
type Lang string

// Supported languages.
const (
	EN Lang = "en"
	ZH Lang = "zh-CN"
)

// Langs lists the supported languages in the order the switcher shows them.
var Langs = []Lang{EN, ZH}

// Strings is the text of the UI in one language. Fields with verbs are
// format strings; their arguments are documented next to them.
type Strings struct {
	LangName    string // the language's own name, for the switcher
	LangLabel   string
	Tagline     string
	Starting    string
	JoinTitle   string
	NameLabel   string
	RoomLabel   string
	JoinButton  string
	Joining     string
	LeaveButton string

	NameTaken   string
	InvalidName string
	InvalidRoom string
	Unreachable string
	SessionLost string
	// SessionNotStored: the browser refused to store the session.
	SessionNotStored string
	ErrorCode        string // %s: the error code

	Connected    string
	Reconnecting string
	Offline      string

	MembersTitle string // %d: how many
	You          string
	NobodyHere   string

	LogLabel       string // %s: room
	MessageLabel   string
	Placeholder    string
	SendButton     string
	TextEmpty      string
	TextTooLong    string // %d: length, %d: limit
	TextInvalid    string
	Counter        string // %d: length, %d: limit
	Pending        string
	Queued         string
	Sent           string
	Textbook       string // the mark of a post made through /send_msg/
	TextbookTitle  string
	Failed         string // %s: the reason
	Retry          string
	Discard        string
	Joined         string // %s: name
	Left           string // %s: name
	Gap            string
	LoadOlder      string
	Loading        string
	NewMessages    string
	Empty          string
	SwitchLabel    string
	SwitchButton   string
	InstallButton  string
	UpdateReady    string
	ReloadButton   string
	OfflineCached  string
	RoomsHint      string
	ConnectionName string

	// The /learn page.
	LessonLink      string
	LessonTitle     string
	LessonIntro     string
	LessonLobby     string
	LessonBack      string
	LessonStarting  string
	ModeShort       string
	ModeLong        string
	ModeTextbook    string
	LaneShort       string // the timeline's short names of the modes
	LaneLong        string
	LaneTextbook    string
	ExplainShort    string
	ExplainLong     string
	ExplainTextbook string
	Send5           string
	Send1           string
	LessonText      string
	LessonAuto      string // %d: the message's number, %s: the page's name
	IntervalLabel   string
	IntervalOption  string // %d: seconds
	StatRequests    string
	StatEmpty       string
	StatReceived    string
	StatOther       string
	StatDelayAvg    string
	StatDelayMax    string
	StatBytes       string
	Millis          string // %d: milliseconds
	TimelineTitle   string
	TimelineDesc    string
	TickAgo         string // %d: seconds before now
	TickNow         string
}

var en = Strings{
	LangName:    "English",
	LangLabel:   "Language",
	Tagline:     "Group chat, delivered by long polling.",
	Starting:    "Starting…",
	JoinTitle:   "Join a room",
	NameLabel:   "Your name",
	RoomLabel:   "Room",
	JoinButton:  "Join",
	Joining:     "Joining…",
	LeaveButton: "Leave",

	NameTaken:        "That name is taken. Pick another one.",
	InvalidName:      "A name is 1 to 32 characters, without control characters.",
	InvalidRoom:      "A room name is 1 to 64 of a–z, 0–9, _ and -, starting with a letter or digit.",
	Unreachable:      "The server cannot be reached. Try again in a moment.",
	SessionLost:      "Your session has ended. Join again.",
	SessionNotStored: "This browser did not let Parley save your name: it is kept in this tab only, and a reload will ask for it again.",
	ErrorCode:        "Something went wrong (%s).",

	Connected:    "Connected",
	Reconnecting: "Reconnecting…",
	Offline:      "Offline",

	MembersTitle: "Here now (%d)",
	You:          "you",
	NobodyHere:   "Nobody else is here yet.",

	LogLabel:       "Messages in %s",
	MessageLabel:   "Message",
	Placeholder:    "Write a message. Enter sends, Shift+Enter adds a line.",
	SendButton:     "Send",
	TextEmpty:      "Write something first.",
	TextTooLong:    "Too long: %d of %d characters.",
	TextInvalid:    "The text contains characters that cannot be sent.",
	Counter:        "%d / %d",
	Pending:        "Sending…",
	Queued:         "Queued, sends when back online",
	Sent:           "Sent",
	Textbook:       "textbook",
	TextbookTitle:  "Posted through the textbook page's /send_msg/: anyone can type this name.",
	Failed:         "Not sent: %s",
	Retry:          "Retry",
	Discard:        "Discard",
	Joined:         "%s joined",
	Left:           "%s left",
	Gap:            "Some messages were missed here.",
	LoadOlder:      "Load older messages",
	Loading:        "Loading…",
	NewMessages:    "New messages ↓",
	Empty:          "No messages yet. Say hello!",
	SwitchLabel:    "Go to room",
	SwitchButton:   "Go",
	InstallButton:  "Install app",
	UpdateReady:    "A new version of Parley is available.",
	ReloadButton:   "Reload",
	OfflineCached:  "You are offline. Showing saved messages; what you write is sent when the connection returns.",
	RoomsHint:      "e.g. lobby",
	ConnectionName: "Connection",

	LessonLink:      "How it works",
	LessonTitle:     "How messages reach you: three ways, live",
	LessonIntro:     "Below, three clients receive the same messages from this server, each its own way. Send a few and watch how many requests each one makes and how late each one is.",
	LessonLobby:     "This page makes a room and a session of its own and sends its messages there, so they show up in nobody's chat. The textbook client reads the same room through /get_msg/?room=…, Parley's addition to the textbook's endpoints, which know only lobby otherwise.",
	LessonBack:      "Back to the chat",
	LessonStarting:  "Connecting the three clients…",
	ModeShort:       "Short polling",
	ModeLong:        "Long polling",
	ModeTextbook:    "The textbook's /get_msg/",
	LaneShort:       "short",
	LaneLong:        "long",
	LaneTextbook:    "/get_msg/",
	ExplainShort:    "The client asks every few seconds whether there is anything new, and the server answers at once, mostly with nothing. A message waits on the server until the next question: on average half an interval late, and most requests are wasted.",
	ExplainLong:     "The client asks once and the server holds the request open until a message arrives (or 25 s pass), then the client asks again at once. Messages arrive as soon as they are sent, with one request per answer instead of one per tick. This is how Parley itself works.",
	ExplainTextbook: "The tutorial's endpoint is long polling too, but each answer carries a single message and the wait is 10 s. A burst of messages takes one round trip per message, so the last of a burst arrives later than with Parley's batches.",
	Send5:           "Send 5 messages",
	Send1:           "Send one",
	LessonText:      "Your own message",
	LessonAuto:      "Lesson message #%d from %s",
	IntervalLabel:   "Short polling interval",
	IntervalOption:  "every %d s",
	StatRequests:    "Requests",
	StatEmpty:       "Empty answers",
	StatReceived:    "Messages received",
	StatOther:       "Others' messages",
	StatDelayAvg:    "Mean delay",
	StatDelayMax:    "Worst delay",
	StatBytes:       "Bytes received",
	Millis:          "%d ms",
	TimelineTitle:   "The last 30 seconds",
	TimelineDesc:    "One lane per client: each bar is a request, from its start to its answer; each dot is a message arriving.",
	TickAgo:         "−%d s",
	TickNow:         "now",
}

var zh = Strings{
	LangName:    "简体中文",
	LangLabel:   "语言",
	Tagline:     "基于长轮询的群聊。",
	Starting:    "正在启动…",
	JoinTitle:   "加入聊天室",
	NameLabel:   "你的名字",
	RoomLabel:   "聊天室",
	JoinButton:  "加入",
	Joining:     "正在加入…",
	LeaveButton: "离开",

	NameTaken:        "这个名字已被使用,请换一个。",
	InvalidName:      "名字长度为 1 到 32 个字符,不能包含控制字符。",
	InvalidRoom:      "聊天室名称为 1 到 64 个 a–z、0–9、_ 或 - 字符,以字母或数字开头。",
	Unreachable:      "无法连接服务器,请稍后再试。",
	SessionLost:      "你的会话已结束,请重新加入。",
	SessionNotStored: "浏览器不允许 Parley 保存你的名字:它只保留在此标签页中,刷新后需要重新输入。",
	ErrorCode:        "出错了(%s)。",

	Connected:    "已连接",
	Reconnecting: "正在重新连接…",
	Offline:      "离线",

	MembersTitle: "在线成员(%d)",
	You:          "你",
	NobodyHere:   "还没有其他人。",

	LogLabel:       "%s 的消息",
	MessageLabel:   "消息",
	Placeholder:    "输入消息。按 Enter 发送,Shift+Enter 换行。",
	SendButton:     "发送",
	TextEmpty:      "请先输入内容。",
	TextTooLong:    "太长了:%d / %d 个字符。",
	TextInvalid:    "消息包含无法发送的字符。",
	Counter:        "%d / %d",
	Pending:        "发送中…",
	Queued:         "已排队,恢复连接后发送",
	Sent:           "已发送",
	Textbook:       "教科书",
	TextbookTitle:  "通过教科书页面的 /send_msg/ 发送：任何人都可以填写这个名字。",
	Failed:         "发送失败:%s",
	Retry:          "重试",
	Discard:        "丢弃",
	Joined:         "%s 加入了",
	Left:           "%s 离开了",
	Gap:            "这里有部分消息未能收到。",
	LoadOlder:      "加载更早的消息",
	Loading:        "加载中…",
	NewMessages:    "有新消息 ↓",
	Empty:          "还没有消息,打个招呼吧!",
	SwitchLabel:    "前往聊天室",
	SwitchButton:   "前往",
	InstallButton:  "安装应用",
	UpdateReady:    "Parley 有新版本可用。",
	ReloadButton:   "重新加载",
	OfflineCached:  "你已离线。正在显示已保存的消息;你输入的内容会在恢复连接后发送。",
	RoomsHint:      "例如 lobby",
	ConnectionName: "连接状态",

	LessonLink:      "工作原理",
	LessonTitle:     "消息如何送达:三种方式,实时对比",
	LessonIntro:     "下面三个客户端以各自的方式从本服务器接收同样的消息。发几条消息,看看每个客户端发了多少请求、延迟有多大。",
	LessonLobby:     "本页自己创建一个聊天室和会话,把消息发到那里,所以不会出现在任何人的聊天里。教程客户端通过 /get_msg/?room=… 读取同一个聊天室——这是 Parley 给教程接口加的参数,否则它们只认识 lobby。",
	LessonBack:      "返回聊天",
	LessonStarting:  "正在连接三个客户端…",
	ModeShort:       "短轮询",
	ModeLong:        "长轮询",
	ModeTextbook:    "教程的 /get_msg/",
	LaneShort:       "短轮询",
	LaneLong:        "长轮询",
	LaneTextbook:    "/get_msg/",
	ExplainShort:    "客户端每隔几秒问一次有没有新消息,服务器立即回答,大多是“没有”。消息要在服务器上等到下一次询问:平均晚半个间隔,而且大部分请求都是白费的。",
	ExplainLong:     "客户端只问一次,服务器把请求挂起,直到有消息(或过了 25 秒)才回答,客户端随即再问。消息一发出就能收到,每次回答只需一个请求,而不是每个间隔一个。Parley 本身就是这样工作的。",
	ExplainTextbook: "教程的接口也是长轮询,但每次回答只带一条消息,最长等待 10 秒。一连串消息需要每条一个往返,所以一批消息中的最后一条比 Parley 的批量回答到得晚。",
	Send5:           "发送 5 条消息",
	Send1:           "发送一条",
	LessonText:      "你自己的消息",
	LessonAuto:      "第 %d 条课程消息,来自 %s",
	IntervalLabel:   "短轮询间隔",
	IntervalOption:  "每 %d 秒",
	StatRequests:    "请求数",
	StatEmpty:       "空回答",
	StatReceived:    "收到的消息",
	StatOther:       "其他人的消息",
	StatDelayAvg:    "平均延迟",
	StatDelayMax:    "最大延迟",
	StatBytes:       "收到的字节",
	Millis:          "%d 毫秒",
	TimelineTitle:   "最近 30 秒",
	TimelineDesc:    "每个客户端一条泳道:每个色条是一次请求,从发出到收到回答;每个圆点是一条消息到达。",
	TickAgo:         "−%d 秒",
	TickNow:         "现在",
}

// Get returns the strings of lang, English for an unknown one.
func Get(lang Lang) *Strings {
	if lang == ZH {
		return &zh
	}
	return &en
}

// Match picks the UI language from the browser's preferred languages
// (navigator.languages), best first: the first one we support wins.
func Match(prefs []string) Lang {
	for _, p := range prefs {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "zh" || strings.HasPrefix(p, "zh-"):
			// Traditional-script locales get Simplified rather than English:
			// closer to what they read than a foreign language.
			return ZH
		case p == "en" || strings.HasPrefix(p, "en-"):
			return EN
		}
	}
	return EN
}

// Parse returns the supported language tag s names, or "" when none.
func Parse(s string) Lang {
	for _, l := range Langs {
		if strings.EqualFold(string(l), s) {
			return l
		}
	}
	return ""
}

// ErrorText explains an API error code to a person.
func (s *Strings) ErrorText(code string) string {
	switch code {
	case shared.CodeNameTaken:
		return s.NameTaken
	case shared.CodeInvalidName:
		return s.InvalidName
	case shared.CodeInvalidRoom:
		return s.InvalidRoom
	case shared.CodeTextEmpty:
		return s.TextEmpty
	case shared.CodeTextInvalid:
		return s.TextInvalid
	case shared.CodeUnauthorized, shared.CodeUnknownToken:
		return s.SessionLost
	case "network":
		return s.Unreachable
	}
	return fmt.Sprintf(s.ErrorCode, code)
}
