from shared.errors import DomainError, NotFound


class SignInFailed(DomainError):
    """The same answer for an unknown name, a wrong password and a disabled account: nobody learns which
    accounts exist."""

    status_code = 401
    code = "sign_in_failed"
    message_zh = "用户名或密码错误，请重新输入；多次输错将暂时无法登录"
    message_en = "Wrong account name or password; try again (repeated failures block sign-in for a while)"


class TooManySignInFailures(DomainError):
    status_code = 429
    code = "too_many_sign_in_failures"
    message_zh = "登录失败次数过多，请稍后再试；如忘记密码，请联系系统管理员重置"
    message_en = "Too many failed sign-ins; try again later, or ask an administrator to reset the password"


class NotASignInSession(DomainError):
    status_code = 400
    code = "not_a_sign_in_session"
    message_zh = "当前令牌不属于登录会话，无需刷新或退出"
    message_en = "This token does not come from a sign-in: there is no session to refresh or end"


class AccountNotFound(NotFound):
    code = "account_not_found"
    message_zh = "账号不存在"
    message_en = "Account not found"


class AccountExists(DomainError):
    status_code = 409
    code = "account_exists"
    message_zh = "该用户名已被使用，请换一个"
    message_en = "This account name is taken; choose another"


class AccountRoleNotAllowed(DomainError):
    status_code = 422
    code = "account_role_not_allowed"
    message_zh = "参保人不使用工作人员账号，请通过微信或政务服务平台登录"
    message_en = "Residents have no staff account: they sign in through the front-ends"


class AccountAreaInvalid(DomainError):
    status_code = 422
    code = "account_area_invalid"
    message_zh = "账号的地区或类别与角色不符：经办人员须有地区，部门须有地区和类别，其他角色不设地区和类别"
    message_en = (
        "Regions and categories do not fit the role: staff need regions, departments regions and "
        "categories, other roles neither"
    )


class PasswordTooWeak(DomainError):
    status_code = 422
    code = "password_too_weak"
    message_zh = "密码不得包含用户名，请换一个"
    message_en = "The password may not contain the account name; choose another"


class AccountAlreadyDisabled(DomainError):
    status_code = 409
    code = "account_already_disabled"
    message_zh = "该账号已停用"
    message_en = "This account is already disabled"


class AccountNotDisabled(DomainError):
    status_code = 409
    code = "account_not_disabled"
    message_zh = "该账号未停用，无需启用"
    message_en = "This account is not disabled"


class LastAdministrator(DomainError):
    status_code = 409
    code = "last_administrator"
    message_zh = "不能停用或改变最后一个启用的管理员账号，请先为他人开设管理员账号"
    message_en = (
        "The last enabled administrator cannot be disabled or given another role; create another first"
    )


ACCOUNT_ERRORS: tuple[type[DomainError], ...] = (AccountRoleNotAllowed, AccountAreaInvalid, PasswordTooWeak)
