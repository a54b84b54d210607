/** Logging in and out, the people, the companies, and the account's locked private key. */
import { Refusal } from "./envelope.js";
import { authed, open, type Endpoint } from "./api.js";
import { userInfo, userView } from "./views.js";

export const accountRoutes: Record<string, Endpoint> = {
  "auth/login": open(({ form }, ctx) => {
    form.require("email", "password", "device_id", "app_name", "encrypted", "callable");
    const session = ctx.store.login(
      form.requiredString("email"),
      form.requiredString("password"),
      form.requiredString("device_id"),
      form.requiredString("app_name"),
    );
    if (session === undefined) throw new Refusal("login_failed", "email or password wrong");
    return { client_key: session.clientKey, userinfo: userInfo(ctx, ctx.store.user(session.userId)) };
  }),

  "auth/check": authed(() => ({ success: true })),

  "auth/logout": authed(({ session }, ctx) => {
    ctx.store.logout(session);
    return { success: true };
  }),

  "users/me": authed(({ form, user }, ctx) => ({ user: userInfo(ctx, user, form.bool("withkey", true)) })),

  "users/info": authed(({ form }, ctx) => {
    const other = ctx.store.user(form.requiredInt("user_id"));
    return { user: userView(ctx, other, form.bool("withkey", true)) };
  }),

  "company/member": authed(({ form, user }, ctx) => {
    const companyId = form.int("company_id");
    // With a company_id the same endpoint lists that company's people.
    if (companyId !== undefined) {
      if (!user.companyIds.includes(companyId))
        throw new Refusal("no_permission", `you are not a member of company ${String(companyId)}`);
      return {
        members: ctx.store
          .allUsers()
          .filter((u) => u.companyIds.includes(companyId))
          .map((u) => userView(ctx, u)),
      };
    }
    return {
      companies: user.companyIds.flatMap((id) => {
        const company = ctx.store.companies.get(id);
        return company === undefined
          ? []
          : [
              {
                id: String(company.id),
                name: company.name,
                quota: "10737418240",
                max_users: null,
                created: String(user.created),
                deleted: null,
                features: [],
                protected: true,
                roles: [],
                permission: [],
                settings: { encryption: true, company_id: String(company.id) },
                domains: [],
                user_count: ctx.store.allUsers().filter((u) => u.companyIds.includes(id)).length,
                unread_messages: 0,
              },
            ];
      }),
    };
  }),

  /** The locked private key in the form asked for: JWK with `format=jwk`, the legacy PEM otherwise. */
  "security/get_private_key": authed(({ form, user }) => {
    // Signing keys exist on the real server; nothing here signs, so none is kept.
    if (form.string("type") === "signing")
      throw new Refusal("not_found", "there is no signing key for this account");
    const format = form.string("format") === "jwk" ? "jwk" : "pem";
    const locked = user.lockedPrivateKeys[format];
    if (locked === undefined)
      throw new Refusal("not_found", `this account has no private key in the ${format} form`);
    return {
      keys: {
        user_id: String(user.id),
        private_key: locked,
        public_key: user.publicKey,
        time: String(user.created),
        // null while the key is in use (stashcat-api-client's model, generated from real answers).
        deleted: null,
        version: 1,
        type: "encryption",
        format,
      },
    };
  }),
};
