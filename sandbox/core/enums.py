"""What the protocol's coded fields mean: field name -> code -> (English, 中文).

The partner spec's enumeration tables (docs/protocol.md §3 "enumerations") and the codes its
field descriptions define. The OpenAPI document carries them as `x-enum-descriptions` (and
`x-enum-descriptions-zh`), and /docs lists them beside each field.
"""

from __future__ import annotations

from .lifecycle import Status

Meanings = dict[int, tuple[str, str]]

ORDER_STATUS: Meanings = {
    Status.NEW: ("new order", "新订单"),
    Status.REVIEWING: ("under review", "审批中"),
    Status.APPROVED: ("approved, payout in progress", "审批成功/放款处理中"),
    Status.REJECTED: ("rejected", "审批拒绝"),
    Status.CANCELLED: ("cancelled", "贷款取消"),
    Status.PAYOUT_FAILED: ("payout failed", "放款失败"),
    Status.REPAYING: ("paid out, repaying", "放款成功/正常还款中"),
    Status.OVERDUE: ("overdue", "已逾期"),
    Status.SETTLED: ("settled", "还款结清"),
}

TERM_UNIT: Meanings = {1: ("days", "天"), 2: ("months", "月")}
YES: Meanings = {1: ("yes", "是")}
NO_YES: Meanings = {0: ("no", "否"), 1: ("yes", "是")}

MEANINGS: dict[str, Meanings] = {
    "order_status": ORDER_STATUS,
    "term_unit": TERM_UNIT,
    "is_reloan": {0: ("first loan", "新客"), 1: ("returning customer", "复贷")},
    "user_type": {1: ("employed", "已工作"), 2: ("student", "学生"), 3: ("other", "其他")},
    "education": {
        1: ("no schooling", "未受过教育"),
        2: ("primary school", "小学"),
        3: ("middle school", "中学"),
        4: ("high school", "高中"),
        5: ("bachelor's degree", "大学本科"),
        6: ("postgraduate", "研究生"),
    },
    "loan_remark": {
        1: ("daily life and work", "生活、工作使用"),
        2: ("consumption", "消费使用"),
        3: ("education", "教育支出"),
        4: ("travel", "旅游使用"),
        5: ("wedding", "结婚使用"),
        6: ("medical", "医疗支出"),
        7: ("home renovation", "装修"),
        8: ("religious travel", "宗教旅行"),
        9: ("childbirth", "生育支出"),
        10: ("several purposes", "多用途使用"),
        11: ("other", "其他"),
    },
    "religion": {
        1: ("Muslim", "穆斯林"),
        2: ("Protestant", "基督教"),
        3: ("Catholic", "天主教徒"),
        4: ("Hindu", "印度教"),
        5: ("Buddhist", "佛教"),
        6: ("Confucian", "儒教/孔教"),
    },
    "marital_status": {
        1: ("single", "单身"),
        2: ("married", "已婚"),
        3: ("divorced", "离婚"),
        4: ("widowed", "丧偶"),
    },
    "sex": {1: ("male", "男"), 2: ("female", "女")},
    "work_type": {
        1: ("entrepreneur", "企业家"),
        2: ("employee (private)", "员工（私人）"),
        3: ("employee (public)", "员工（公共）"),
        4: ("professional", "专业人士"),
        5: ("citizen", "公民"),
        6: ("student", "学生"),
        7: ("not working", "无工作"),
        8: ("self-employed", "自雇"),
        9: ("wage earner", "工薪阶层"),
        10: ("other", "其他"),
    },
    "emergs_relation": {
        1: ("spouse", "夫妻/配偶"),
        2: ("parent", "父母"),
        3: ("child", "子女/孩子"),
        4: ("sibling", "兄弟/姐妹"),
        5: ("relative", "亲戚"),
        6: ("friend", "朋友"),
        7: ("colleague", "同事"),
        8: ("other", "其他"),
    },
    "action_type": {
        1: ("banks for binding a card", "绑卡银行列表"),
        2: ("repayment methods", "还款方式"),
    },
    "repay_method": {1: ("bank (virtual account)", "银行"), 2: ("convenience store", "便利店")},
    "repay_type": {1: ("full repayment", "还款"), 2: ("extension fee", "展期")},
    "pass_face_photo": YES,
    "same_person": YES,
    "is_overdue": NO_YES,
    "url_repay": {0: ("no repayment page", "无还款页面"), 1: ("url_info is a page", "有还款页面")},
    "delay_repay": {0: ("no extension possible", "不可展期"), 1: ("extension possible", "可展期")},
    "delay_status": {
        0: ("extension code open", "展期码待支付"),
        1: ("paid", "已支付"),
        2: ("expired or voided unpaid", "已过期或作废"),
    },
}


def meanings(field: str, lang: str = "en") -> dict[int, str]:
    """code -> meaning of a coded field ({} for other fields), in English or 中文 ("zh")."""
    column = 1 if lang == "zh" else 0
    return {int(code): texts[column] for code, texts in MEANINGS.get(field, {}).items()}
