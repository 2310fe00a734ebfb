"""The text of an inbound email: HTML turned into readable text, and the reply cut from what it quotes.

`own_words` is a small marker-based extractor of our own. The libraries weighed for it fell short:
email-reply-parser (last release 2020, English only), talon (2017, pulls scikit-learn), quotequail (finds
"On ... wrote:" but not signatures, "Sent from my iPhone" or an Outlook header block without a rule above it)
and mail-parser-reply (maintained, but its regexes backtrack: 80 KB of "On a" took minutes, one mail's
denial of service). This one reads line by line, runs its patterns on short lines only, and is linear.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from lxml.etree import ParserError
from lxml.html import Element, document_fromstring

_HIDDEN = ("head", "script", "style", "title", "noscript", "template")
_HTML_CONFIG = ParserConfig(
    css={**CSS_PROFILES["strict"], **{tag: HtmlElement(display=Display.none) for tag in _HIDDEN}},
)
_XML_DECLARATION = re.compile(r"^<\?xml [^>]{0,500}\?>")
_LINK_SCHEMES = ("http:", "https:", "mailto:", "ftp:", "tel:")  # an address worth keeping beside its words
_MAX_MARKER_LINE = 500  # intros and header lines are short; longer lines are text, and no pattern runs on them

# "On <date>, <name> wrote:" in the languages of our requesters' mail clients (Gmail, Apple Mail, Thunderbird):
# the line's first word, and what must follow somewhere in it (it ends with a colon). One `search` each: linear.
_INTROS = {
    "on": re.compile(r"\bwrote\s*:$", re.IGNORECASE),
    "le": re.compile(r"\ba\s+écrit\s*:$", re.IGNORECASE),
    "am": re.compile(r"\bschrieb\b", re.IGNORECASE),
    "el": re.compile(r"\bescribió\s*:$", re.IGNORECASE),
    "il": re.compile(r"\bha\s+scritto\s*:$", re.IGNORECASE),
    "op": re.compile(r"\bschreef\b", re.IGNORECASE),
    "em": re.compile(r"\bescreveu\s*:$", re.IGNORECASE),
    "den": re.compile(r"\bskrev\b", re.IGNORECASE),
}
# "... wrote:" above a quote (`_intro_lines`): also Polish ("W dniu <date> <name> pisze:", whose words a person's own
# line may have: "W dniu 5.12 dostałem maila, w którym kolega pisze:"), with a colon as Latin mail clients write it,
# or the full-width one of Chinese and Japanese ones ("写道：")
_WROTE = re.compile(
    r"(?:\b(?:wrote|a écrit|schrieb|escribió|ha scritto|schreef|escreveu|skrev|pisze|napisał(?:\(a\)|a)?"
    # (no \b before a CJK verb: the time's digit before it is a word character too)
    r"|написала?|написав|kirjoitti|írta)|写道|寫道|님이\s*작성)\s*[:：]$",
    re.IGNORECASE,
)
# Gmail's intro in Japanese or Russian names no verb: "2026年12月6日(日) 13:08 Help Desk <helpdesk@...>:", "вс, 6
# дек. 2026 г. в 13:08, Help Desk <helpdesk@...>:": an address in angle brackets ending the line, above a quote
_ADDRESS_INTRO = re.compile(r"<[^<>@\s]+@[^<>\s]+>\s*[:：]$")
_ORIGINAL = re.compile(
    r"-{3,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale"
    r"|oorspronkelijk bericht|mensagem original|originalmeddelande|исходное сообщение|原始邮件|原始郵件|邮件原件"
    r"|원본 메시지|alkuperäinen viesti|eredeti üzenet)\s*-{3,}",
    re.IGNORECASE,
)
# Outlook's quoted header block in the languages of our requesters' mail clients: Latin ones, then Japanese,
# Chinese (simplified and traditional), Korean, Russian, Ukrainian, Hungarian and Finnish ("差出人:", "发件人：")
_FROM = re.compile(
    r"\*?(?:from|de|von|da|van|från|fra|od|差出人|发件人|寄件者|寄件人|от|보낸\s*사람|від|feladó|lähettäjä)"
    r"\s*[:：]\*?\s*\S",
    re.IGNORECASE,
)
_SUBJECT = re.compile(
    r"\*?(?:subject|objet|betreff|asunto|assunto|oggetto|onderwerp|ämne|emne|temat|aihe|件名|主题|主旨|тема|제목"
    r"|tárgy)\s*[:：]",
    re.IGNORECASE,
)
_HEADER = re.compile(
    r"\*?(?:sent|date|to|cc|subject|envoyé|à|objet|gesendet|datum|an|betreff|enviado|fecha|para|asunto|assunto"
    r"|inviato|data|a|oggetto|verzonden|aan|onderwerp|skickat|till|ämne|emne|sendt|til|wysłano|do|temat|lähetetty"
    r"|vastaanottaja|aihe|送信日時|日時|日付|宛先|件名|发送时间|发送日期|时间|日期|收件人|抄送|主题|寄件日期|收件者|副本|主旨"
    r"|отправлено|дата|кому|копия|тема|보낸\s*날짜|날짜|받는\s*사람|참조|제목|надіслано|kelt|címzett|tárgy)\s*[:：]",
    re.IGNORECASE,
)
_MOBILE = re.compile(  # a line of its own, at the end of the words (_cut_at): "Sent from my phone the error ..."
    r"(?:sent from my|sent from (?:mail|outlook|yahoo mail)|get outlook for|envoyé de mon|envoyé depuis mon"
    r"|von meinem .* gesendet|gesendet von meinem|enviado desde mi|inviato da|verzonden vanaf mijn"
    r"|skickat från min)\b[^,;]{0,100}",
    re.IGNORECASE,
)

# A mail forwarded inline begins with one of these (Gmail, Thunderbird, Apple Mail, Outlook on the web): what
# follows is news to the desk (a vendor's answer, a bounce), never a quote of the desk's mail, and is kept.
_FORWARD = re.compile(
    r"-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado"
    r"|messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada|vidarebefordrat meddelande)\s*-{2,}"
    r"|(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié)\s*:",
    re.IGNORECASE,
)
# A subject's forward prefix (Outlook writes "FW:", German ones "WG:", French "TR:", Spanish "RV:")
FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|tr|rv|enc)\s*:", re.IGNORECASE)

# first letters of every marker above (a bare "wrote:" ends in a colon, as Gmail's intros without a verb do)
_MARKER_STARTS = frozenset("-_*adefgilosvw差发寄от보вfl")
_COLONS = (":", "：")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body (inscriptis lays out lists and tables); never the markup, scripts or styles."""
    try:
        tree = html_tree(html)
        if tree is None:
            return ""
        _addresses_beside_links(tree)
        _quoted_blockquotes(tree)
        _tables_within_bounds(tree)
        text = Inscriptis(tree, _HTML_CONFIG).get_text()
    except Exception:  # a parser failure must not lose the mail: fall back to the stdlib's tokenizer
        text = _strip_tags(html)
    return tidy(text)


MAX_TABLE_CELLS = 5_000  # cells and rows of the tables of one mail laid out as tables (a long invoice: some hundreds)
MAX_TABLE_TEXT = 500_000  # characters a table's layout may take: its rows times its columns' widths


def _tables_within_bounds(tree) -> None:
    """Tables whose layout would cost too much read as lines of words instead (each row a line, its cells side by
    side). inscriptis pads every line of a row to each column's widest cell, and lays out every row as wide as the
    widest row: a 258 KiB mail of one long cell beside 8,000 rows made 320 million characters, one of a row of
    20,000 cells above 4,000 rows 15 s of CPU, a long cell beside one of 8,000 lines (`<br>`) 900 MB. So: every
    table of a mail with more than MAX_TABLE_CELLS cells and rows in all, and any table whose lines (its rows'
    tallest cells) times its columns' widest cells pass MAX_TABLE_TEXT."""
    tables = list(tree.iter("table"))
    if not tables:
        return
    if sum(1 for _ in tree.iter("tr", "td", "th")) > MAX_TABLE_CELLS:
        for table in tables:
            _as_lines(table)
        return
    lengths, lines = _text_sizes(tree)
    for table in tables:
        if table.tag == "table" and _laid_out_size(table, lengths, lines) > MAX_TABLE_TEXT:  # (not one made lines)
            _as_lines(table)


# what starts a line inside a cell (a cell's height in lines: 1 and one more for each of these inside it)
_LINE_BREAKS = frozenset(
    {"br", "p", "div", "li", "tr", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "dt", "dd"}
)


def _text_sizes(tree) -> tuple[dict, dict]:
    """Each element's text length and its count of line breaks, its descendants' included: one pass, children
    before their parent."""
    lengths: dict = {}
    lines: dict = {}
    for element in reversed(list(tree.iter())):
        lengths[element] = len(element.text or "") + sum(lengths[child] + len(child.tail or "") for child in element)
        lines[element] = sum(lines[child] + (child.tag in _LINE_BREAKS) for child in element)
    return lengths, lines


def _laid_out_size(table, lengths: dict, lines: dict) -> int:
    """About how many characters the table's layout takes (more, never less): its lines (each row as tall as its
    tallest cell) times the sum of its columns' widest cells."""
    height, widths = 0, []
    for row in table.iter("tr"):
        if next(row.iterancestors("table"), None) is not table:
            continue  # a row of a table inside a cell: that cell's width and height count it
        cells = [cell for cell in row if cell.tag in ("td", "th")]
        height += 1 + max((lines.get(cell, 0) for cell in cells), default=0)
        widths += [0] * (len(cells) - len(widths))
        for column, cell in enumerate(cells):
            widths[column] = max(widths[column], lengths.get(cell, 0))
    return height * (sum(widths) + len(widths))


def _as_lines(table) -> None:
    """The table as blocks of words: each row (and caption) a line, its cells one after the other."""
    for element in list(table.iter("table", "thead", "tbody", "tfoot", "tr", "caption", "td", "th")):
        if element.tag in ("td", "th"):
            element.tail = " " + (element.tail or "")
            element.tag = "span"
        else:
            element.tag = "div"


def html_tree(html: str):
    """The document's tree as inscriptis builds it (None for an empty one): a whole document, never a fragment's
    wrapper that the CSS profiles would style; an XML declaration, which lxml refuses in text, left out."""
    html = _XML_DECLARATION.sub("", html.strip(), count=1)
    if not html:
        return None
    try:
        return document_fromstring(html)
    except ParserError:
        return document_fromstring(f"<pre>{html}</pre>")


def _addresses_beside_links(tree) -> None:
    """Each link's address after its words, as people write one in a plain mail: "the driver (https://x/d)"; the
    address alone where the words are it (or a linked image has none), a mail address without its "mailto:". The
    address goes inside the link, so a link the mail hides hides it too; a link inside a link (only broken HTML
    has one) is its outer link's words: each text is read once."""
    for link in tree.iter("a"):
        address = (link.get("href") or "").strip()
        if not address.lower().startswith(_LINK_SCHEMES) or next(link.iterancestors("a"), None) is not None:
            continue  # an anchor, a relative or script link, a nested one: its words alone
        shown = address.split(":", 1)[1].split("?", 1)[0] if address.lower().startswith("mailto:") else address
        words = " ".join(link.text_content().split())
        if not shown or words.casefold() in (shown.casefold(), address.casefold()):
            continue  # the address is its words already, or there is none to show
        added = f" ({shown})" if words else shown
        if len(link):
            link[-1].tail = (link[-1].tail or "") + added
        else:
            link.text = (link.text or "") + added


def _quoted_blockquotes(tree) -> None:
    """Each outermost blockquote (an HTML reply's quoted mail: Gmail's `gmail_quote`, Apple Mail's and
    Thunderbird's `type="cite"`) as its text with "> " before each line, as a plain reply quotes: `own_words` then
    tells the person's words from the quote in an HTML-only mail as in a plain one."""
    for quote in [q for q in tree.iter("blockquote") if next(q.iterancestors("blockquote"), None) is None]:
        parent = quote.getparent()
        if parent is None:
            continue
        tail, quote.tail = quote.tail, None
        quote.tag = "div"  # its text as a block, whatever blockquotes it holds
        text = tidy(Inscriptis(quote, _HTML_CONFIG).get_text())
        shown = Element("pre")
        shown.text = "\n".join(f"> {line}" if line.strip() else ">" for line in text.split("\n")) + "\n"
        shown.tail = tail
        parent.replace(quote, shown)


def tidy(text: str) -> str:
    """One line ending, no trailing blanks on a line, at most one empty line in a row, no blank edges."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def own_words(text: str, forwarded: bool = False) -> str:
    """What the person wrote, without the quoted mail and signature; empty when the mail holds nothing else.

    A mail forwarded inline is no quote: from its marker ("---------- Forwarded message ---------"), or from the
    first quoted header of a mail whose subject says it is forwarded (`forwarded`: Outlook's "FW:" writes no
    marker), everything is kept (the vendor's answer the person passes on is what the agent needs).

    Quoted lines go, unless the person answered between them ("> Which phone?", "iPhone 14", "> Which iOS?",
    "18.1": their text between two quoted passages): then the questions stay with their answers, as written, and
    what is quoted after the last answer goes. (A name under one quoted mail is not that: its quote still goes.)
    The mail is cut at the first line that starts the quoted mail or a signature; where that is an "On ... wrote:"
    above "> " lines, what the person wrote under them (a reply written below the quote, or answers between its
    lines) is theirs too, up to their own signature."""
    lines = text.split("\n")
    cut = _cut_at(lines)
    if cut < len(lines) and (forwarded or _forward_at(lines, cut)):
        return tidy(text).strip()
    kept = lines[:cut]
    if cut < len(lines) and (span := _intro_span(lines, cut)):
        after = lines[cut + span :]
        below = after[: _cut_at(["" if line.startswith(">") else line for line in after])]  # markers of theirs
        quote_marked = next((line for line in after if line.strip()), "").startswith(">")  # else all of it quoted
        if quote_marked and any(line.strip() and not line.startswith(">") for line in below):
            kept += below
    kinds = [line.startswith(">") for line in kept if line.strip()]  # quoted or written, blank lines aside
    passages = [quoted for index, quoted in enumerate(kinds) if index == 0 or kinds[index - 1] != quoted]
    answered_between = any(  # a quote, the person's text, a quote again
        passages[i] and not passages[i + 1] and passages[i + 2] for i in range(len(passages) - 2)
    )
    if answered_between:
        kept = _answers_with_their_questions(kept)
    else:
        kept = [line for line in kept if not line.startswith(">")]
    return tidy("\n".join(kept)).strip()


_SIGN_OFF = re.compile(
    r"(many |kind |best |warm )?(thanks|thank you|thx|ty|cheers|regards|best|br|bye|gracias|saludos|merci|cordialement"
    r"|danke|gr(ü|ue)(ß|ss)e|obrigad[oa]|grazie)( a lot| again| so much)?[\s,.!]*",
    re.IGNORECASE,
)


def _answers_with_their_questions(kept: list[str]) -> list[str]:
    """A reply answered between the quoted lines: the questions with their answers. What is quoted after the last
    answer goes, and so does the quote above a closing line under it ("Thanks,", "Igor": a sign-off, not an
    answer to the help desk's footer, which asks nothing); of the quote above the first answer, only its last
    paragraph stays (the question: the greeting and the words before it are the help desk's)."""
    written = [index for index, line in enumerate(kept) if line.strip() and not line.startswith(">")]
    closing: list[str] = []
    quoted = [index for index, line in enumerate(kept) if line.startswith(">")]
    said = [index for index in quoted if kept[index].lstrip(">").strip()]  # quoted lines that are not blank
    tail = [index for index in written if index > quoted[-1]]
    asked = bool(said) and kept[said[-1]].rstrip().endswith("?")  # under a question, "Thanks" answers it
    if tail and len(tail) < len(written) and not asked and _signs_off([kept[index] for index in tail]):
        closing = ["", *kept[tail[0] : tail[-1] + 1]]
        written = written[: len(written) - len(tail)]
    kept = kept[: written[-1] + 1]  # the quote after the last answer goes
    first = next(index for index, line in enumerate(kept) if line.startswith(">"))
    end = next((index for index in range(first, len(kept)) if not kept[index].startswith(">")), len(kept))
    blanks = [index for index in range(first, end) if not kept[index].lstrip(">").strip()]
    if blanks:  # the quoted paragraphs above the first answer: its question alone stays
        kept = kept[:first] + kept[blanks[-1] + 1 :]
    return kept + closing


def _signs_off(lines: list[str]) -> bool:
    """Whether the lines are a closing and a name ("Thanks,", "Igor"), not an answer."""
    words = [line.strip() for line in lines if line.strip()]
    return 0 < len(words) <= 3 and all(len(line) <= 40 for line in words) and bool(_SIGN_OFF.fullmatch(words[0]))


def _forward_at(lines: list[str], cut: int) -> bool:
    """Whether a forward's marker stands before the first quote marker at `cut`, or is it, with nothing but blank
    lines, the person's words or other markers between (the forwarded mail's own header is what `cut` found)."""
    return any(
        _FORWARD.fullmatch(line.lstrip("> \t").strip()) for line in lines[: cut + 1] if len(line) <= _MAX_MARKER_LINE
    )


def _cut_at(lines: list[str]) -> int:
    """Index of the first line that starts the quoted mail or the signature (len(lines) when none does)."""
    return next((index for index in range(len(lines)) if _marks(lines, index)), len(lines))


def _marks(lines: list[str], index: int) -> bool:
    """Whether line `index` starts the quoted mail or the signature."""
    line = lines[index]
    if line == "-- " or line == "--" and _signature_below(lines, index):  # RFC 3676's (its space dropped: see)
        return True
    stripped = line.lstrip("> \t").strip()
    if not stripped or len(stripped) > _MAX_MARKER_LINE:
        return False
    if stripped[0].lower() not in _MARKER_STARTS and not stripped.endswith(_COLONS):
        return False  # most lines of a long mail: no pattern can match, none runs
    if stripped[0] == "-" and _ORIGINAL.fullmatch(stripped):
        return True
    if _is_intro(lines, index, stripped) or (_MOBILE.fullmatch(stripped) and _last_words(lines, index)):
        return True
    return _is_one_line_header(stripped) or _is_header_block(lines, index, stripped)


def _last_words(lines: list[str], index: int) -> bool:
    """Whether nothing the person wrote follows line `index`: only blank lines, then the end, a quote or another
    marker ("Sent from my iPhone" closes a mail; a sentence that begins so goes on)."""
    following = next((at for at in range(index + 1, len(lines)) if lines[at].strip()), None)
    return following is None or lines[following].startswith(">") or _marks(lines, following)


def _signature_below(lines: list[str], index: int) -> bool:
    """Whether what follows a bare "--" is a signature, judged by its first line: a name ("Jane Doe", then "Acme
    Ltd." and a disclaimer as they come), not the person's text set apart by a line they typed ("--", then "1.
    restarted", or "Also, the printer on floor 2 is broken."): short, no list item, no sentence's end."""
    first = next((line.strip() for line in lines[index + 1 : index + 4] if line.strip()), "")
    return bool(first) and len(first) <= 60 and not _SENTENCE_OR_ITEM.search(first)


_SENTENCE_OR_ITEM = re.compile(r"[.!?:;,]$|^(?:\d+[.)]|[-*•])\s")


def _is_intro(lines: list[str], index: int, stripped: str) -> bool:
    """ "On ... wrote:", also wrapped over three lines (Gmail wraps it); a bare "... wrote:" only above a quote."""
    return _intro_lines(lines, index, stripped) > 0


def _intro_span(lines: list[str], index: int) -> int:
    """How many lines the "On ... wrote:" at `index` takes (1 to 3), 0 when it is none (another marker)."""
    stripped = lines[index].lstrip("> \t").strip()
    return _intro_lines(lines, index, stripped) if stripped and len(stripped) <= _MAX_MARKER_LINE else 0


def _intro_lines(lines: list[str], index: int, stripped: str) -> int:
    verb = _INTROS.get(stripped.split(maxsplit=1)[0].lower().rstrip(","))
    if verb is not None:
        joined = stripped
        for taken, follow in enumerate([*lines[index + 1 : index + 3], ""], start=1):
            # each names when (a date, a time): "Am Freitag schrieb mir Ihr Kollege, ...:" is the person's own
            if joined.endswith(":") and verb.search(joined) and any(c.isdigit() for c in joined):
                return taken
            if not follow.strip() or len(joined) > _MAX_MARKER_LINE:
                break
            joined = f"{joined} {follow.lstrip('> ').strip()}"
    if stripped.endswith(_COLONS) and (_WROTE.search(stripped) or _ADDRESS_INTRO.search(stripped)):
        following = [line for line in lines[index + 1 : index + 4] if line.strip()]
        return 1 if following and following[0].startswith(">") else 0
    return 0


def _is_one_line_header(stripped: str) -> bool:
    """Outlook's header flowed into one line (HTML mail as text): From: ... Sent: ... To: ... Subject: ..."""
    lowered = stripped.lower().lstrip("*")
    if not lowered.startswith("from:"):
        return False
    position = 0
    for names in (("sent:", "date:"), ("to:",), ("subject:",)):
        found = [at for at in (lowered.find(name, position) for name in names) if at >= 0]
        if not found:
            return False
        position = min(found)
    return True


def _is_header_block(lines: list[str], index: int, stripped: str) -> bool:
    """Outlook's quoted header: From: then at least two of Sent/To/Subject/... (or a rule of underscores above)."""
    if stripped.startswith("_" * 20) and not stripped.strip("_"):
        following = [line.strip() for line in lines[index + 1 : index + 4] if line.strip()]
        return bool(following) and bool(_FROM.match(following[0]))
    if not _FROM.match(stripped):
        return False
    below = [line.strip()[:_MAX_MARKER_LINE] for line in lines[index + 1 : index + 7]]
    headers = sum(1 for line in below if _HEADER.match(line))
    # Outlook's has three (Sent, To, Subject), or two with the subject; "From: Berlin / To: Munich / Date:" is a trip
    return headers >= 3 or (headers == 2 and any(_SUBJECT.match(line) for line in below))


class _TagStripper(HTMLParser):
    """The text between tags, less what a browser does not show; a line break at each block element."""

    _BLOCKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _strip_tags(html: str) -> str:
    stripper = _TagStripper()
    try:
        stripper.feed(html)
        stripper.close()
    except Exception:
        pass  # keep what was read up to the failure
    return "".join(stripper.parts)
