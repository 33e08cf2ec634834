/// Prompt templates. Each follows what works for Qwen3-VL on post images: look at the image first,
/// copy out its text, then reason; numbers, amounts and dates are copied exactly; the answer is one
/// JSON object whose fields are in that order (observations and text first, the judgement last).
public enum Prompts {
    static func system(for task: AnalysisTask, language: PromptLanguage) -> String {
        switch language {
        case .zh:
            """
            你是社交媒体帖子分析助手。请按以下顺序工作：
            1. 先仔细观察图片：场景、人物、物品、品牌标识、二维码等。
            2. 再按阅读顺序逐字提取图片中的全部文字，不要改写、翻译或补全。
            3. 最后结合图片和帖子文字进行判断。
            特别注意数字、金额、折扣和日期，必须与原文完全一致。
            只输出一个 JSON 对象，不要输出其他内容。
            """
        case .en:
            """
            You analyze social-media posts. Work in this order:
            1. Look at the image carefully first: the setting, people, objects, brand logos, QR codes.
            2. Then copy all the text in the image verbatim, in reading order, without rewriting, translating or completing it.
            3. Only then reason about the image and the post's text.
            Pay special attention to numbers, amounts, discounts and dates: copy them exactly as written.
            Output one JSON object and nothing else.
            """
        }
    }

    static func user(for task: AnalysisTask, record: PostRecord, language: PromptLanguage, hasImage: Bool,
                     tile: (index: Int, count: Int)?) -> String {
        var parts: [String] = []
        if let tile {
            parts.append(language == .zh
                ? "这是一张长图切分后的第 \(tile.index + 1)/\(tile.count) 块，只提取这一块中的文字；被边缘截断的行也照原样提取。"
                : "This is tile \(tile.index + 1) of \(tile.count) cut from a long image. Extract only the text in this tile; copy lines cut at the edges as they appear.")
        }
        parts.append(taskInstruction(task, language: language))
        if let text = record.text, !text.isEmpty {
            parts.append((language == .zh ? "帖子文字：\n" : "Post text:\n") + text)
        } else if !hasImage {
            parts.append(language == .zh ? "（帖子没有文字）" : "(The post has no text.)")
        }
        if !hasImage {
            parts.append(language == .zh ? "（这条帖子没有图片，只根据文字判断，图片相关字段留空。）"
                                         : "(This post has no image: judge from the text alone and leave image fields empty.)")
        }
        parts.append((language == .zh ? "输出格式：\n" : "Output format:\n") + outputTemplate(task, language: language))
        return parts.joined(separator: "\n\n")
    }

    static func taskInstruction(_ task: AnalysisTask, language: PromptLanguage) -> String {
        switch (task.kind, language) {
        case (.ocr, .zh):
            return "任务：识别图片中所有可见文字，按阅读顺序（从上到下、从左到右）每行一条输出。保留原文的标点、数字和符号，不要合并或省略重复的行。"
        case (.ocr, .en):
            return "Task: read all visible text in the image, one entry per line, in reading order (top to bottom, left to right). Keep punctuation, digits and symbols as written; do not merge lines or skip repeated ones."
        case (.describe, .zh):
            return "任务：描述图片展示的内容：一句话概述、场景、人物、物品、可见的品牌，以及图片中的文字。"
        case (.describe, .en):
            return "Task: describe what the image shows: a one-sentence summary, the setting, the people, the objects, the visible brands, and the text in the image."
        case (.moderation, .zh):
            return """
            任务：内容审核。检查图片和帖子文字是否涉及以下类别，每个命中的类别都要给出证据（引用图片文字原文，或描述图片内容）：
            - absolute_claim：夸大或绝对化广告用语，如“最”“第一”“100%”“国家级”“顶级”
            - false_efficacy：虚假功效宣传（治愈、速效减肥、包治百病等）
            - prohibited_goods：违禁商品（药品处方药、烟草、管制刀具、野生动物制品等）
            - sexual：色情或性暗示
            - violence：暴力、血腥
            - hate：仇恨、歧视
            - gambling：赌博
            - contact_leak：留下微信号、手机号、二维码等引导到站外交易
            - minors：涉及未成年人的不当内容
            证据能在图片中找到位置时（二维码、电话号码、违规图案、宣传语等），在 evidence 中逐条给出它的边框 bbox_2d（[x1, y1, x2, y2]，按图片宽高归一化到 0 到 1000 的整数坐标）、简短标签 label、类别 category 和其中的原文 text（没有文字填 null）。
            结论 verdict：没有问题为 allow，需要人工复核为 review，明确违规为 block。
            """
        case (.moderation, .en):
            return """
            Task: content moderation. Check the image and the post's text for these categories; for each one found, give the evidence (quote the image text, or describe what the image shows):
            - absolute_claim: exaggerated or absolute advertising claims such as "best", "No. 1", "100%", "national-level", 最, 第一, 国家级
            - false_efficacy: false efficacy claims (cures, instant weight loss, miracle effects)
            - prohibited_goods: prohibited goods (prescription drugs, tobacco, weapons, wildlife products)
            - sexual: sexual content
            - violence: violence or gore
            - hate: hate or discrimination
            - gambling: gambling
            - contact_leak: WeChat IDs, phone numbers or QR codes that move the deal off the platform
            - minors: inappropriate content involving minors
            When a piece of evidence can be located in the image (a QR code, a phone number, a prohibited item, a slogan), list it under evidence with its box bbox_2d ([x1, y1, x2, y2], integers from 0 to 1000 relative to the image's width and height), a short label, its category and the text it carries (null when none).
            verdict: allow when nothing is wrong, review when a person should check, block for a clear violation.
            """
        case (.sentiment, .zh):
            return """
            任务：分析这条评论（图片加文字）的情感。给出整体倾向 polarity（positive/negative/neutral/mixed）和分数 score（-1 到 1），以及各方面（product 商品、delivery 物流、service 服务、price 价格、gift 赠品）的倾向和证据。
            如果文字的说法与图片显示的不一致（例如文字说“完好无损”但图片里包装破损），写进 mismatches。
            """
        case (.sentiment, .en):
            return """
            Task: analyze the sentiment of this review (image plus text). Give the overall polarity (positive/negative/neutral/mixed), a score from -1 to 1, and for each aspect (product, delivery, service, price, gift) its polarity and evidence.
            When what the text claims differs from what the image shows (e.g. the text says "arrived intact" but the box is crushed), list it under mismatches.
            """
        case (.promo, .zh):
            return """
            任务：提取促销信息。列出每个商品的名称、现价、原价、折扣，照原文抄写（如“¥1,299”“7.5折”）；列出促销机制（满减、优惠券、买赠、第二件半价等）、活动开始和结束时间（照原文，如“11.11 0点”）、平台（淘宝、京东、拼多多、抖音等）和宣传用语。没有的信息填 null。
            """
        case (.promo, .en):
            return """
            Task: extract the promotion. For each product give its name, price, original price and discount, copied as written (e.g. "¥1,299", "7.5折", "30% off"); list the promotion mechanics (spend-and-save, coupons, bundles, second item half price), the start and end time as written (e.g. "11.11 0点"), the platform (Taobao, JD, Pinduoduo, Douyin, ...) and the marketing claims. Use null for what is not stated.
            """
        case (.detect, .zh):
            var text = "任务：在图片中定位与内容审核和营销分析有关的目标：二维码，电话号码、微信号等联系方式，网址，品牌标志，商品，价格，宣传语，人物，以及其他醒目的文字。每个目标给出边框 bbox_2d（[x1, y1, x2, y2]，按图片宽高归一化到 0 到 1000 的整数坐标）、简短标签 label、类别 category，以及目标中的文字 text（照原文抄写，没有文字填 null）。框要紧贴目标，同一目标只框一次。"
            if let targets = task.instruction { text += "\n只找这些目标：" + targets }
            return text
        case (.detect, .en):
            var text = "Task: locate the objects in the image that matter for moderation and marketing analysis: QR codes, contact details such as phone numbers and WeChat IDs, URLs, brand logos, products, prices, slogans, people, and other prominent text. For each one give its box bbox_2d ([x1, y1, x2, y2], integers from 0 to 1000 relative to the image's width and height), a short label, a category, and the text it carries (copied as written; null when none). Boxes fit the object tightly; box each object once."
            if let targets = task.instruction { text += "\nLook only for: " + targets }
            return text
        case (.custom, _):
            return (language == .zh ? "任务：" : "Task: ") + (task.instruction ?? "")
        }
    }

    /// The answer's shape, in the order the model should write it.
    static func outputTemplate(_ task: AnalysisTask, language: PromptLanguage) -> String {
        let zh = language == .zh
        switch task.kind {
        case .ocr:
            return zh ? #"{"lines": ["第一行文字", "第二行文字"]}"# : #"{"lines": ["first line", "second line"]}"#
        case .describe:
            return zh
                ? #"{"summary": "一句话概述", "setting": "场景", "people": ["人物"], "objects": ["物品"], "brands": ["品牌"], "text": ["图片中的文字"]}"#
                : #"{"summary": "one sentence", "setting": "where", "people": ["person"], "objects": ["object"], "brands": ["brand"], "text": ["text in the image"]}"#
        case .moderation:
            return zh
                ? #"{"image_text": ["图片中的文字"], "observations": "图片内容描述", "categories": [{"category": "absolute_claim", "evidence": "“全网最低价”", "source": "image_text"}], "evidence": [{"bbox_2d": [120, 40, 880, 160], "label": "宣传语", "category": "absolute_claim", "text": "全网最低价"}], "verdict": "allow | review | block"}"#
                : #"{"image_text": ["text in the image"], "observations": "what the image shows", "categories": [{"category": "absolute_claim", "evidence": "\"lowest price ever\"", "source": "image_text"}], "evidence": [{"bbox_2d": [120, 40, 880, 160], "label": "slogan", "category": "absolute_claim", "text": "lowest price ever"}], "verdict": "allow | review | block"}"#
        case .sentiment:
            return zh
                ? #"{"image_text": ["图片中的文字"], "observations": "图片内容描述", "aspects": [{"aspect": "delivery", "polarity": "negative", "evidence": "外箱压扁"}], "mismatches": [{"claim": "文字的说法", "observed": "图片实际显示"}], "evidence": ["关键证据"], "polarity": "positive | negative | neutral | mixed", "score": -0.6}"#
                : #"{"image_text": ["text in the image"], "observations": "what the image shows", "aspects": [{"aspect": "delivery", "polarity": "negative", "evidence": "crushed box"}], "mismatches": [{"claim": "what the text says", "observed": "what the image shows"}], "evidence": ["key evidence"], "polarity": "positive | negative | neutral | mixed", "score": -0.6}"#
        case .promo:
            return zh
                ? #"{"image_text": ["图片中的文字"], "products": [{"name": "商品名", "price_text": "¥999", "original_price_text": "¥1,299", "discount_text": "7.5折"}], "mechanics": ["满300减50"], "start_text": "11.11 0点", "end_text": "11月11日23:59", "platform": "淘宝", "claims": ["宣传用语"]}"#
                : #"{"image_text": ["text in the image"], "products": [{"name": "product", "price_text": "$99", "original_price_text": "$129", "discount_text": "25% off"}], "mechanics": ["spend $300 get $50 off"], "start_text": "Nov 11 0:00", "end_text": "Nov 11 23:59", "platform": "Taobao", "claims": ["marketing claim"]}"#
        case .detect:
            return zh
                ? #"{"objects": [{"bbox_2d": [620, 700, 960, 980], "label": "二维码", "category": "qr_code", "text": null}, {"bbox_2d": [60, 40, 900, 150], "label": "宣传语", "category": "claim", "text": "全网最低价"}]}"#
                : #"{"objects": [{"bbox_2d": [620, 700, 960, 980], "label": "QR code", "category": "qr_code", "text": null}, {"bbox_2d": [60, 40, 900, 150], "label": "slogan", "category": "claim", "text": "lowest price ever"}]}"#
        case .custom:
            return (zh ? "符合以下 JSON Schema 的 JSON 对象：\n" : "A JSON object that satisfies this JSON Schema:\n") + task.schema.sortedText
        }
    }
}
