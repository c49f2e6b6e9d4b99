"""How workers get in: the one place that spells each entry method's names and import aliases.

Everything that names entry methods reads :data:`ENTRY_SPECS`: the schema's ``EntryMethod`` and
:data:`ENTRY_METHODS`, the stores' ``CHECK`` constraint (:func:`entry_check_sql`), import
validation (:func:`entry_alias_rules`) and the web map (labels, :func:`entry_labels`).

The order of :data:`ENTRY_SPECS` is part of the data format: the web map payload encodes a
method as its position. Append a new method, never reorder; a new method also needs a PostGIS
migration replacing the ``facilities_entry_method`` constraint (the condition of
:func:`entry_check_sql` as a literal), as for kinds (:mod:`geodata.kinds`).

Examples
--------
>>> ENTRY_METHODS[:2]
('walk_in', 'scan_register')
>>> entry_labels("zh")["call_keeper"]
'电话联系管理员开门'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntrySpec:
    """One way of getting in.

    Attributes
    ----------
    name
        The stored value, e.g. ``"call_keeper"`` (which needs ``entry_phone``).
    label_zh, label_en
        What the map's popups and lists say.
    aliases
        Regular expression (case-insensitive, searched) recognising the method in an imported
        list's free text (直接进入, 扫码登记, 人脸识别, APP开锁, 电话联系, 工作人员陪同, ...).
    alias_rank
        Order in which the aliases are tried, lowest first; the first match wins (``APP扫码开锁``
        is an app, so apps rank before scanning; ``无需登记`` is walking in, so walking in ranks
        before registering).
    """

    name: str
    label_zh: str
    label_en: str
    aliases: str
    alias_rank: int

    def label(self, language: str) -> str:
        """The label in ``language`` (``"zh"`` or ``"en"``)."""
        return {"zh": self.label_zh, "en": self.label_en}[language]


#: The entry methods, in code order (append, never reorder).
ENTRY_SPECS: tuple[EntrySpec, ...] = (
    EntrySpec(
        name="walk_in",
        label_zh="直接进入",
        label_en="Walk in",
        aliases=r"^(walk.?in|free|open)$|直接|自由|无需|免登记|随到随|敞开|开放式",
        alias_rank=4,
    ),
    EntrySpec(
        name="scan_register",
        label_zh="扫码登记后进入",
        label_en="Scan a code to register",
        aliases=r"^scan(.?(to.?)?register)?$|扫码|二维码|登记|扫一扫",
        alias_rank=5,
    ),
    EntrySpec(
        name="face_registration",
        label_zh="需提前登记人脸",
        label_en="Face registered in advance",
        aliases=r"^face(.?registration)?$|人脸|刷脸|面部识别|面容",
        alias_rank=0,
    ),
    EntrySpec(
        name="app_unlock",
        label_zh="需用手机 APP 开锁",
        label_en="Unlock with a phone app",
        aliases=r"^app(.?unlock)?$|app|开锁|小程序|手机开门",
        alias_rank=1,
    ),
    EntrySpec(
        name="call_keeper",
        label_zh="电话联系管理员开门",
        label_en="Call the keeper to open",
        aliases=r"^call(.?the)?(.?keeper)?$|电话|致电|打给|联系管理员|联系值守|拨打",
        alias_rank=2,
    ),
    EntrySpec(
        name="staff_escort",
        label_zh="由工作人员陪同进入",
        label_en="Staff let you in",
        aliases=r"^(staff.?escort|escort)$|陪同|带领|工作人员开门|保安开门|前台|专人",
        alias_rank=3,
    ),
)

#: The stored entry method names, in code order.
ENTRY_METHODS: tuple[str, ...] = tuple(e.name for e in ENTRY_SPECS)


def entry_labels(language: str) -> dict[str, str]:
    """``{method: label}`` in ``language`` (``"zh"`` or ``"en"``), in code order."""
    return {e.name: e.label(language) for e in ENTRY_SPECS}


def entry_alias_rules() -> tuple[tuple[str, str], ...]:
    """``(pattern, method)`` pairs in the order an importer tries them (by ``alias_rank``)."""
    return tuple((e.aliases, e.name) for e in sorted(ENTRY_SPECS, key=lambda e: e.alias_rank))


def entry_check_sql(column: str = "entry_method") -> str:
    """The SQL condition a store's ``CHECK`` constraint puts on the entry method column
    (empty allowed), valid in SQLite and PostgreSQL."""
    names = ", ".join(f"'{e.name}'" for e in ENTRY_SPECS)
    return f"{column} IS NULL OR {column} IN ({names})"
