"""Guesses the language of a short message offline, for choosing the language of the first answer.

Scripts decide most cases (Burmese, kana, Vietnamese letters); Latin-script languages are told apart by
frequent short words. Returns None when unsure: the bot then asks the worker to choose.
"""
from __future__ import annotations

import re
import unicodedata

# Characters used in simplified Chinese but not in Japanese writing, and frequent Chinese function words.
_ZH_MARKERS = set("们这说么吗没钱资为们们还从让给对发会时问题该请谢")
_VI_LETTERS = set("ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
_WORDS: dict[str, set[str]] = {
    "en": {"the", "i", "is", "you", "my", "to", "and", "hello", "hi", "what", "how", "please", "want", "help",
           "not", "work", "money", "company", "yes", "thank", "thanks", "good", "morning", "can", "do"},
    "tl": {"ang", "ng", "mga", "ako", "po", "ko", "sa", "hindi", "kumusta", "salamat", "magandang", "opo", "oo",
           "ikaw", "ba", "naman", "gusto", "trabaho", "pera", "kayo", "umaga", "hello po"},
    "id": {"saya", "tidak", "yang", "dan", "ini", "apa", "halo", "selamat", "terima", "kasih", "bisa", "mau",
           "aku", "kamu", "ya", "gaji", "kerja", "pagi", "tolong", "bagaimana", "belum", "sudah"},
    "pt": {"não", "eu", "você", "obrigado", "obrigada", "olá", "oi", "que", "um", "meu", "com", "está", "bom",
           "dia", "tudo", "bem", "sim", "quero", "trabalho", "salário", "ajuda", "empresa"},
    "es": {"hola", "yo", "que", "el", "la", "gracias", "buenos", "estoy", "mi", "quiero", "sí", "trabajo",
           "ayuda", "empresa", "usted", "días", "buenas", "sueldo", "dinero", "por", "favor"},
    "vi": {"xin", "chao", "toi", "khong", "co", "cam", "on", "ban", "em", "anh", "chi", "luong", "cong", "ty"},
}


def detect_language(text: str) -> str | None:
    text = unicodedata.normalize("NFC", text or "").strip()
    if not text:
        return None
    if any("\u1000" <= ch <= "\u109f" or "\uaa60" <= ch <= "\uaa7f" for ch in text):
        return "my"
    if any("\u3040" <= ch <= "\u30ff" for ch in text):
        return "ja"
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return "zh" if any(ch in _ZH_MARKERS for ch in text) else "ja"
    lowered = text.casefold()
    if any(ch in _VI_LETTERS for ch in lowered):
        return "vi"
    words = re.findall(r"[^\W\d_]+", lowered)
    if not words:
        return None
    scores = {lang: sum(1 for w in words if w in vocab) for lang, vocab in _WORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    if scores[best] == 0 or list(scores.values()).count(scores[best]) > 1:
        return None
    return best
