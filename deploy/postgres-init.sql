-- Each service owns its database: the image creates `registry`; this adds `collection`.
CREATE DATABASE collection OWNER canbao;
