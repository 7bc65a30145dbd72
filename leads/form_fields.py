"""The form field catalogue: labels, input kinds, length limits and the choice lists with Chinese labels.

Choice fields store a stable code (``"director"``, ``"500_999"``) so scoring and assignment rules do not
depend on wording; the label is only what the visitor sees. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text"
TEL = "tel"
EMAIL_KIND = "email"
CHOICE = "choice"

Choices = tuple[tuple[str, str], ...]  # (code, Chinese label)

# Ability scoring reads these codes: VP and above / Director / Manager (see DOMAIN.md).
JOB_LEVELS: Choices = (
    ("vp_plus", "VP及以上 / 高管"),
    ("director", "总监"),
    ("manager", "经理 / 主管"),
    ("staff", "专员 / 工程师"),
    ("other", "其他"),
)
DEPARTMENTS: Choices = (
    ("hr", "人力资源"),
    ("finance", "财务"),
    ("legal", "法务"),
    ("it", "IT / 信息技术"),
    ("sales", "销售"),
    ("marketing", "市场"),
    ("operations", "运营"),
    ("procurement", "采购"),
    ("management", "总经办 / 管理层"),
    ("other", "其他"),
)
# The bands DOMAIN.md scores (250–499, 500–999, 1000–50000) plus the sizes around them.
COMPANY_SIZES: Choices = (
    ("1_49", "1–49人"),
    ("50_249", "50–249人"),
    ("250_499", "250–499人"),
    ("500_999", "500–999人"),
    ("1000_50000", "1000–50000人"),
    ("50000_plus", "50000人以上"),
)
COMPANY_TYPES: Choices = (
    ("b2b", "B2B（面向企业）"),
    ("b2c", "B2C（面向消费者）"),
    ("nonprofit", "非营利组织"),
    ("other", "其他"),
)
INDUSTRIES: Choices = (
    ("manufacturing", "制造业"),
    ("internet", "互联网 / 软件"),
    ("finance", "金融 / 保险"),
    ("retail", "零售 / 消费品"),
    ("healthcare", "医疗 / 医药"),
    ("education", "教育 / 培训"),
    ("real_estate", "房地产 / 建筑"),
    ("energy", "能源 / 化工"),
    ("logistics", "物流 / 交通"),
    ("public", "政府 / 公共事业"),
    ("services", "专业服务"),
    ("other", "其他"),
)
_PROVINCES = (
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江", "安徽", "福建",
    "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆", "四川", "贵州", "云南", "西藏",
    "陕西", "甘肃", "青海", "宁夏", "新疆", "香港", "澳门", "台湾", "海外",
)
# Assignment rules match regions by name, so the stored code is the name itself.
REGIONS: Choices = tuple((p, p) for p in _PROVINCES)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    kind: str
    max_len: int = 100
    choices: Choices = ()
    placeholder: str = ""
    autocomplete: str = ""

    def label_of(self, code: str) -> str:
        return dict(self.choices).get(code, code)


FIELD_SPECS: dict[str, FieldSpec] = {spec.name: spec for spec in (
    FieldSpec("name", "姓名", TEXT, 50, placeholder="请输入您的姓名", autocomplete="name"),
    FieldSpec("phone", "手机号码", TEL, 20, placeholder="11位手机号码", autocomplete="tel"),
    FieldSpec("email", "工作邮箱", EMAIL_KIND, 254, placeholder="name@company.com", autocomplete="email"),
    FieldSpec("company", "公司名称", TEXT, 100, placeholder="请输入公司全称", autocomplete="organization"),
    FieldSpec("job_title", "职级", CHOICE, choices=JOB_LEVELS),
    FieldSpec("department", "所在部门", CHOICE, choices=DEPARTMENTS),
    FieldSpec("company_size", "公司规模", CHOICE, choices=COMPANY_SIZES),
    FieldSpec("company_type", "公司类型", CHOICE, choices=COMPANY_TYPES),
    FieldSpec("industry", "所属行业", CHOICE, choices=INDUSTRIES),
    FieldSpec("region", "所在地区", CHOICE, choices=REGIONS),
    FieldSpec("product_interest", "感兴趣的产品 / 需求", TEXT, 200, placeholder="例如：招聘管理、薪酬核算"),
)}
